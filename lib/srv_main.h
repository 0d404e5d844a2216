/* srv_main.h - the entry point of a FastCGI application server built on this kit. */
#ifndef IF_SRV_MAIN_H
#define IF_SRV_MAIN_H

#include "srv.h"

/* Runs the server: loads the configuration (app->config_load), sets up the listening socket
 * (and the ops socket when configured), creates the scoreboard, forks and supervises the
 * workers (lib/pm.c) until a stop signal. Returns the process exit code (2: bad
 * configuration or socket). */
int srv_main(const struct srv_app *app, int argc, char **argv);

#endif
