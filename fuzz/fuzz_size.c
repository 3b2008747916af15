/* libFuzzer target: the CLI's argument parsers (src/cli/args.c, compiled
 * into this target): sizes with suffixes (cli_size), integers (cli_u64,
 * cli_u32), permission modes (cli_mode), tags (cli_tag), page kinds,
 * addresses, and the option parser (cli_parse) on argument vectors.
 *
 * Input: byte 0 selects the parser; the rest is the text (up to the first
 * NUL) or, for cli_parse, NUL-separated arguments.
 *
 * Checked beyond memory safety: each number parser accepts exactly the
 * documented language (oracles below, written from cli.h: decimal or
 * 0x/0X hex digits; sizes with "", K, KiB, M, MiB, G, GiB, T, TiB as powers
 * of 1024; modes in octal up to 07777; tags non-zero; everything within
 * 64 bits) with the same value and returns CLI_GO or CLI_USAGE only
 * (the output is not promised untouched on failure); cli_parse returns CLI_GO (with
 * 0..3 positional arguments), CLI_OK (--help) or CLI_USAGE. */
#include "../src/cli/args.c"
#include "../src/cli/out.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const cli_cmd_t fuzz_cmd = {"fuzz", NULL, "fuzz", "fuzz [A] [B] [C]", "options: --flag -f --val V --list L\n"};

/* Digits (decimal or 0x hex) at s; returns 1 with *v and *end, 0 if none
 * or more than 64 bits. */
static int o_digits(const char *s, uint64_t *v, const char **end) {
  unsigned base = 10;
  if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    base = 16;
    s += 2;
  }
  unsigned __int128 x = 0;
  const char *p = s;
  for (;; p++) {
    unsigned d;
    if (*p >= '0' && *p <= '9') d = (unsigned)(*p - '0');
    else if (base == 16 && *p >= 'a' && *p <= 'f') d = (unsigned)(*p - 'a' + 10);
    else if (base == 16 && *p >= 'A' && *p <= 'F') d = (unsigned)(*p - 'A' + 10);
    else break;
    x = x * base + d;
    if (x > UINT64_MAX) return 0;
  }
  if (p == s) return 0;
  *v = (uint64_t)x;
  *end = p;
  return 1;
}

static int o_size(const char *s, uint64_t *out) {
  static const char *const suf[] = {"", "K", "KiB", "M", "MiB", "G", "GiB", "T", "TiB"};
  static const int shift[] = {0, 10, 10, 20, 20, 30, 30, 40, 40};
  uint64_t v;
  const char *end;
  if (!o_digits(s, &v, &end)) return 0;
  for (int i = 0; i < 9; i++) {
    if (strcmp(end, suf[i])) continue;
    unsigned __int128 x = (unsigned __int128)v << shift[i];
    if (x > UINT64_MAX) return 0;
    *out = (uint64_t)x;
    return 1;
  }
  return 0;
}

static int o_u64(const char *s, uint64_t *out) {
  const char *end;
  return o_digits(s, out, &end) && !*end;
}

static int o_mode(const char *s, uint32_t *out) {
  if (!*s) return 0;
  uint64_t v = 0;
  for (; *s; s++) {
    if (*s < '0' || *s > '7') return 0;
    v = v * 8 + (uint64_t)(*s - '0');
    if (v > 07777) return 0;
  }
  *out = (uint32_t)v;
  return 1;
}

static void check_rc(int rc, int ok) {
  if (rc != CLI_GO && rc != CLI_USAGE) abort();
  if ((rc == CLI_GO) != ok) abort();
}

static void fuzz_parse(cli_t *c, const char *text, size_t n) {
  char *argv[64];
  int argc = 0;
  for (size_t i = 0; i < n && argc < 63;) {
    argv[argc++] = (char *)text + i;
    i += strlen(text + i) + 1;
  }
  argv[argc] = NULL;
  int flag = 0, level = -1;
  const char *val = NULL;
  cli_list_t list = {0};
  const cli_opt_t opts[] = {{"flag", 'f', CLI_OPT_FLAG, &flag, NULL, "a flag"},
                            {"val", 'v', CLI_OPT_ARG, &val, "V", "a value"},
                            {"list", 'l', CLI_OPT_LIST, &list, "L", "values"},
                            {"level", 'V', CLI_OPT_LEVEL, &level, "N", "a level"},
                            {NULL, 0, 0, NULL, NULL, NULL}};
  c->argc = argc;
  c->argv = argv;
  int rc = cli_parse(c, opts, 0, 3);
  if (rc != CLI_GO && rc != CLI_OK && rc != CLI_USAGE) abort();
  if (rc == CLI_GO) {
    if (c->npos < 0 || c->npos > 3) abort();
    for (int i = 0; i < c->npos; i++)
      if (!c->pos[i]) abort();
    for (int i = 0; i < list.n; i++)
      if (!list.v[i]) abort();
    if (level < -1 || level > 999999999) abort(); /* at most 9 digits */
  }
  cli_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  char *s = malloc(size + 1);
  if (!s) abort();
  memcpy(s, data + 1, size - 1);
  s[size - 1] = 0;
  cli_t c = {.cmd = &fuzz_cmd};
  uint64_t v = 0, want = 0;
  uint32_t v32 = 0xA5A5A5A5u, want32 = 0;
  int rc;
  switch (data[0] % 8) {
  case 0:
    rc = cli_size(&c, "SIZE", s, &v);
    check_rc(rc, o_size(s, &want));
    if (rc == CLI_GO && v != want) abort();
    break;
  case 1:
    rc = cli_u64(&c, "N", s, &v);
    check_rc(rc, o_u64(s, &want));
    if (rc == CLI_GO && v != want) abort();
    break;
  case 2: {
    int ok = o_u64(s, &want) && want <= UINT32_MAX;
    rc = cli_u32(&c, "N", s, &v32);
    check_rc(rc, ok);
    if (rc == CLI_GO && v32 != (uint32_t)want) abort();
    break;
  }
  case 3:
    rc = cli_mode(&c, "--mode", s, &v32);
    check_rc(rc, o_mode(s, &want32));
    if (rc == CLI_GO && v32 != want32) abort();
    break;
  case 4: {
    int ok = o_u64(s, &want) && want;
    rc = cli_tag(&c, "TAG", s, &v);
    check_rc(rc, ok);
    if (rc == CLI_GO && v != want) abort();
    break;
  }
  case 5: {
    wksp_page_t pg;
    rc = cli_page(&c, "--page-size", s, &pg);
    check_rc(rc, !strcmp(s, "normal") || !strcmp(s, "huge") || !strcmp(s, "gigantic"));
    break;
  }
  case 6: {
    char name[WKSP_NAME_MAX];
    rc = cli_addr(&c, "ADDR", s, name, &v);
    if (rc != CLI_GO && rc != CLI_USAGE) abort();
    break;
  }
  default: fuzz_parse(&c, s, size - 1); break;
  }
  free(s);
  return 0;
}
