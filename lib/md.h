/* md.h - a small Markdown to HTML renderer for text nobody vouches for (a model's answer).
 *
 * Every byte of the input reaches the output HTML-escaped (buf_html's set: & < > " '); the
 * only markup in the output is the renderer's own, and no attribute carries input. The subset
 * (of CommonMark, section numbers of its 0.31 spec): ATX headings # to ###### (4.2), fenced
 * code blocks ``` and ~~~ (4.5), thematic breaks --- *** ___ (4.1), paragraphs (4.8), block
 * quotes > (5.1), unordered (- * +) and ordered (1. or 1)) list items (5.2, one level: nested
 * items join their list), pipe tables shown preformatted; inline **strong**, __strong__ and
 * `code` (6.1, 6.4). Links, images and raw HTML are shown as the text they are.
 */
#ifndef IF_MD_H
#define IF_MD_H

#include "buf.h"

/* Appends the HTML of the Markdown text md (NULL: nothing) to b. Never fails (b grows as
 * buf_* do). Block elements end with a newline. */
void md_html(struct buf *b, const char *md);

#endif
