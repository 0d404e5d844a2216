/* prd_html.c - the page around a PRD download (prd_html.h). The style is inline: the page is
 * a file the user keeps, opened without our server. */
#include "prd_html.h"

static const char html_head[] =
	"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
	"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>";
static const char html_style[] =
	"</title>\n<style>\n"
	"body{font-family:-apple-system,BlinkMacSystemFont,\"Segoe UI\",Roboto,Helvetica,Arial,"
	"sans-serif;max-width:860px;margin:2rem auto;padding:0 1rem;color:#1f2937;"
	"line-height:1.6}\n"
	"h1{border-bottom:3px solid #4f46e5;padding-bottom:.4rem}\n"
	"h2{color:#4338ca;border-bottom:1px solid #e5e7eb;padding-bottom:.2rem;margin-top:2rem}\n"
	"h3{color:#374151;margin-bottom:.3rem}\n"
	".meta{background:#f3f4f6;border-radius:6px;padding:.8rem 1rem .8rem 2rem}\n"
	".text{white-space:pre-wrap}\n"
	".status,.missing{color:#6b7280;font-style:italic}\n"
	".message{border-left:3px solid #c7d2fe;padding:.2rem .8rem;margin:.8rem 0}\n"
	".message .who{font-weight:600}\n"
	".message .at{color:#6b7280;font-size:.85em}\n"
	"pre{background:#f9fafb;padding:.6rem;overflow-x:auto;white-space:pre-wrap}\n"
	"</style>\n</head>\n<body>\n";

void prd_html_begin(struct buf *b, const char *title)
{
	buf_puts(b, html_head);
	buf_html(b, title);
	buf_puts(b, html_style);
}

void prd_html_end(struct buf *b)
{
	buf_puts(b, "</body>\n</html>\n");
}
