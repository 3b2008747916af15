/* libFuzzer target: "name:gaddr" address strings (wksp_addr_parse and
 * wksp_addr_format).  The input bytes, up to the first NUL, are the string.
 *
 * Checked beyond memory safety: the parser accepts exactly what the
 * contract in wksp.h describes (an independent oracle below: name of 1..39
 * bytes of [A-Za-z0-9_.-] starting alphanumeric, ':', decimal or 0x/0X hex
 * digits, value < 2^64, nothing else) with the same name and value; a
 * failure is INVAL with a message and leaves the outputs untouched; an
 * accepted address formats back to "name:<decimal>", which parses to the
 * same pair. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wksp/wksp.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int name_byte(char c, int first) {
  int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  return alnum || (!first && (c == '_' || c == '.' || c == '-'));
}

/* The contract, written independently: 1 if s is a valid address. */
static int oracle(const char *s, char name[WKSP_NAME_MAX], uint64_t *gaddr) {
  const char *colon = strchr(s, ':');
  if (!colon) return 0;
  size_t len = (size_t)(colon - s);
  if (len < 1 || len > WKSP_NAME_MAX - 1) return 0;
  for (size_t i = 0; i < len; i++)
    if (!name_byte(s[i], i == 0)) return 0;
  const char *d = colon + 1;
  unsigned base = 10;
  if (d[0] == '0' && (d[1] == 'x' || d[1] == 'X')) {
    base = 16;
    d += 2;
  }
  if (!*d) return 0;
  unsigned __int128 v = 0;
  for (; *d; d++) {
    unsigned dv;
    if (*d >= '0' && *d <= '9') dv = (unsigned)(*d - '0');
    else if (base == 16 && *d >= 'a' && *d <= 'f') dv = (unsigned)(*d - 'a' + 10);
    else if (base == 16 && *d >= 'A' && *d <= 'F') dv = (unsigned)(*d - 'A' + 10);
    else return 0;
    v = v * base + dv;
    if (v > UINT64_MAX) return 0;
  }
  memcpy(name, s, len);
  name[len] = 0;
  *gaddr = (uint64_t)v;
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *s = malloc(size + 1);
  if (!s) abort();
  memcpy(s, data, size);
  s[size] = 0;

  char name[WKSP_NAME_MAX], want_name[WKSP_NAME_MAX];
  memset(name, 0x5a, sizeof name);
  uint64_t gaddr = 0x5a5a5a5a5a5a5a5aull, want = 0;
  int rc = wksp_addr_parse(s, name, &gaddr);
  int ok = oracle(s, want_name, &want);
  if (ok != !rc) abort(); /* accepts exactly the contract's language */
  if (rc) {
    if (rc != WKSP_ERR_INVAL || !wksp_errmsg()[0]) abort();
    for (size_t i = 0; i < sizeof name; i++)
      if (name[i] != 0x5a) abort();
    if (gaddr != 0x5a5a5a5a5a5a5a5aull) abort();
  } else {
    if (strcmp(name, want_name) || gaddr != want) abort();
    char buf[WKSP_ADDR_MAX], canon[WKSP_ADDR_MAX + 8], name2[WKSP_NAME_MAX];
    uint64_t g2;
    if (wksp_addr_format(name, gaddr, buf, sizeof buf)) abort();
    snprintf(canon, sizeof canon, "%s:%llu", name, (unsigned long long)gaddr);
    if (strcmp(buf, canon)) abort();
    if (wksp_addr_parse(buf, name2, &g2) || strcmp(name2, name) || g2 != gaddr) abort();
    /* Too small a buffer: INVAL, buffer untouched. */
    size_t need = strlen(buf) + 1;
    char small[WKSP_ADDR_MAX];
    memset(small, 0x33, sizeof small);
    if (wksp_addr_format(name, gaddr, small, need - 1) != WKSP_ERR_INVAL) abort();
    for (size_t i = 0; i < sizeof small; i++)
      if (small[i] != 0x33) abort();
  }
  free(s);
  return 0;
}
