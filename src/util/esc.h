/* Escaping of untrusted text for output.  Strings read from a checkpoint
 * (app, host, path, build and user info) and from the command line may hold
 * any byte; printed raw, escape sequences, CR and stray bytes reach the
 * terminal and can rewrite what the reader sees.  This is the one routine
 * that makes such text safe, in the spelling each output needs.
 *
 * What is escaped, in every style:
 *   - bytes below 0x20 and 0x7f (control characters);
 *   - bytes that are not part of a valid UTF-8 sequence (as \xNN, or \u00NN
 *     in JSON);
 *   - valid UTF-8 sequences of C1 control characters (U+0080..U+009F, which
 *     some terminals obey like ESC) and of the invisible characters that
 *     reorder or break lines (U+061C, U+200E, U+200F, U+2028..U+202E,
 *     U+2066..U+2069), as \uXXXX;
 * every other valid UTF-8 sequence and printable ASCII byte passes as it
 * is.  The styles differ in spelling and in what quoting they protect: */
#ifndef WKSP_UTIL_ESC_H
#define WKSP_UTIL_ESC_H

#include <stddef.h>

typedef enum {
  /* C string-literal contents, for text output: \\ \" \n \r \t, \xNN for
   * other control and invalid bytes (always two hex digits). */
  WKSP_ESC_C,
  /* JSON string contents (without the quotes): \\ \" \n \r \t, \u00NN for
   * other control and invalid bytes; valid JSON for any input. */
  WKSP_ESC_JSON,
  /* A line already formatted (quotes of its own, escapes made by an inner
   * layer): as WKSP_ESC_C, but '\\' and '"' pass unchanged. */
  WKSP_ESC_LINE,
} wksp_esc_t;

/* Longest spelling of one unit ("\u202e" is 6 bytes), plus a NUL. */
enum { WKSP_ESC_UNIT_MAX = 8 };

/* Escapes the unit at the start of s[0..n) (n >= 1): one byte, or one
 * whole UTF-8 sequence.  Writes its spelling to out (NUL-terminated), sets
 * *out_len to its length and returns how many bytes of s it stands for
 * (1..4). */
size_t wksp_private_esc_unit(const char *s, size_t n, wksp_esc_t style,
                             char out[WKSP_ESC_UNIT_MAX], size_t *out_len);

/* Escapes s[0..n) into dst (cap bytes; NUL-terminated when cap >= 1), cut
 * only between whole escapes when it does not fit.  Returns the length of
 * the complete escape, as snprintf does: a result >= cap means dst holds
 * a cut prefix. */
size_t wksp_private_esc(char *dst, size_t cap, const char *s, size_t n, wksp_esc_t style);

#endif
