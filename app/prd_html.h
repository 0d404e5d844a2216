/* prd_html.h - the HTML page of a PRD download (API.md 1.11): one head and style for the
 * deterministic template (app/h_reports.c) and the export agent's document (app/agentd.c),
 * so both exports look alike. */
#ifndef IF_APP_PRD_HTML_H
#define IF_APP_PRD_HTML_H

#include "../lib/buf.h"

/* Appends the doctype, the head (title HTML-escaped; NULL: empty) with the style, and
 * <body>. */
void prd_html_begin(struct buf *b, const char *title);

/* Appends the end of the body and of the page. */
void prd_html_end(struct buf *b);

#endif
