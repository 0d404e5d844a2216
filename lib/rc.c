/* rc.c - result codes and their one mapping to HTTP. */
#include "rc.h"

static const char *const rc_names[RC__MAX] = {
	[RC_OK] = "RC_OK",
	[RC_CREATED] = "RC_CREATED",
	[RC_ACCEPTED] = "RC_ACCEPTED",
	[RC_BADREQ] = "RC_BADREQ",
	[RC_UNAUTH] = "RC_UNAUTH",
	[RC_FORBIDDEN] = "RC_FORBIDDEN",
	[RC_NOTFOUND] = "RC_NOTFOUND",
	[RC_METHOD] = "RC_METHOD",
	[RC_CONFLICT] = "RC_CONFLICT",
	[RC_GONE] = "RC_GONE",
	[RC_TOOLARGE] = "RC_TOOLARGE",
	[RC_MEDIA] = "RC_MEDIA",
	[RC_INVALID] = "RC_INVALID",
	[RC_RATELIMIT] = "RC_RATELIMIT",
	[RC_INTERNAL] = "RC_INTERNAL",
	[RC_UNAVAILABLE] = "RC_UNAVAILABLE",
};

static const int rc_status[RC__MAX] = {
	[RC_OK] = 200,       [RC_CREATED] = 201,   [RC_ACCEPTED] = 202, [RC_BADREQ] = 400,
	[RC_UNAUTH] = 401,   [RC_FORBIDDEN] = 403, [RC_NOTFOUND] = 404, [RC_METHOD] = 405,
	[RC_CONFLICT] = 409, [RC_GONE] = 410,      [RC_TOOLARGE] = 413, [RC_MEDIA] = 415,
	[RC_INVALID] = 422,  [RC_RATELIMIT] = 429, [RC_INTERNAL] = 500, [RC_UNAVAILABLE] = 503,
};

const char *rc_str(enum rc rc)
{
	if ((unsigned)rc >= RC__MAX)
		return "RC_UNKNOWN";
	return rc_names[rc];
}

int rc_http_status(enum rc rc)
{
	if ((unsigned)rc >= RC__MAX)
		return 500;
	return rc_status[rc];
}

const char *http_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 413: return "Payload Too Large";
	case 415: return "Unsupported Media Type";
	case 422: return "Unprocessable Entity";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	default: return "Unknown";
	}
}
