/* sysd.h - systemd integration without depending on systemd: socket activation and readiness
 * notification (sd_listen_fds(3), sd_notify(3) protocols). With --with-systemd the library
 * functions are used; otherwise the documented environment protocols are spoken directly. */
#ifndef IF_SYSD_H
#define IF_SYSD_H

/* The first socket passed by systemd (fd 3) when LISTEN_PID is us and LISTEN_FDS >= 1, else
 * -1. Unsets the variables so children do not see them. */
int sysd_listen_fd(void);

/* Sends a state string ("READY=1", "RELOADING=1", "STOPPING=1", "STATUS=...") to the service
 * manager when NOTIFY_SOCKET is set; silently nothing otherwise. */
void sysd_notify(const char *state);

#endif
