/* Escaping of untrusted text for output (contract in esc.h). */
#include "util/esc.h"

#include <stdint.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at s[0..n) (2..4 bytes), or 0 if it
 * does not start one (overlong forms, surrogates and code points above
 * U+10FFFF are not valid). */
static size_t utf8_len(const unsigned char *p, size_t n) {
  size_t k = p[0] >= 0xf0 && p[0] <= 0xf4 ? 4 : p[0] >= 0xe0 && p[0] < 0xf0 ? 3 : p[0] >= 0xc2 && p[0] < 0xe0 ? 2 : 0;
  if (!k || k > n) return 0;
  for (size_t i = 1; i < k; i++)
    if ((p[i] & 0xc0) != 0x80) return 0;
  if (k == 3 && ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] >= 0xa0))) return 0;
  if (k == 4 && ((p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] >= 0x90))) return 0;
  return k;
}

static uint32_t utf8_code(const unsigned char *p, size_t k) {
  uint32_t c = k == 2 ? p[0] & 0x1fu : k == 3 ? p[0] & 0x0fu : p[0] & 0x07u;
  for (size_t i = 1; i < k; i++) c = c << 6 | (p[i] & 0x3fu);
  return c;
}

/* Code points a terminal obeys or that change the order or the lines of
 * the text around them without showing themselves. */
static int code_hidden(uint32_t c) {
  return (c >= 0x80 && c <= 0x9f) || c == 0x61c || c == 0x200e || c == 0x200f ||
         (c >= 0x2028 && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069);
}

static size_t spell_hex(char *out, const char *lead, unsigned v, int digits) {
  static const char hex[] = "0123456789abcdef";
  size_t len = strlen(lead);
  memcpy(out, lead, len);
  for (int d = digits - 1; d >= 0; d--) out[len++] = hex[(v >> (4 * d)) & 15];
  out[len] = 0;
  return len;
}

size_t wksp_private_esc_unit(const char *s, size_t n, wksp_esc_t style,
                             char out[WKSP_ESC_UNIT_MAX], size_t *out_len) {
  const unsigned char *p = (const unsigned char *)s;
  const char *named = NULL;
  switch (p[0]) {
  case '\n': named = "\\n"; break;
  case '\r': named = "\\r"; break;
  case '\t': named = "\\t"; break;
  case '\\': named = style == WKSP_ESC_LINE ? NULL : "\\\\"; break;
  case '"': named = style == WKSP_ESC_LINE ? NULL : "\\\""; break;
  default: break;
  }
  if (named) {
    *out_len = strlen(named);
    memcpy(out, named, *out_len + 1);
    return 1;
  }
  if (p[0] >= 0x20 && p[0] < 0x7f) {
    out[0] = (char)p[0];
    out[1] = 0;
    *out_len = 1;
    return 1;
  }
  size_t k = p[0] >= 0x80 ? utf8_len(p, n) : 0;
  if (k && !code_hidden(utf8_code(p, k))) {
    memcpy(out, p, k);
    out[k] = 0;
    *out_len = k;
    return k;
  }
  if (k) { /* every hidden code point is in the BMP: four digits */
    *out_len = spell_hex(out, "\\u", utf8_code(p, k), 4);
    return k;
  }
  *out_len = style == WKSP_ESC_JSON ? spell_hex(out, "\\u", p[0], 4) : spell_hex(out, "\\x", p[0], 2);
  return 1;
}

size_t wksp_private_esc(char *dst, size_t cap, const char *s, size_t n, wksp_esc_t style) {
  size_t len = 0, at = 0;
  int cut = 0;
  while (at < n) {
    char unit[WKSP_ESC_UNIT_MAX];
    size_t ulen;
    at += wksp_private_esc_unit(s + at, n - at, style, unit, &ulen);
    if (!cut && len + ulen < cap) memcpy(dst + len, unit, ulen);
    else if (!cut) {
      cut = 1;
      if (cap) dst[len] = 0;
    }
    len += ulen;
  }
  if (!cut && cap) dst[len] = 0;
  return len;
}
