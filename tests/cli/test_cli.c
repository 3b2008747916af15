/* Unit tests of the CLI's parsing and formatting (src/cli/args.c, out.c):
 * edge cases the shell tests cannot reach cheaply (exact limits, overflow by
 * one, UTF-8 and control bytes in JSON strings, size rounding).  The two
 * files are compiled into this program; their usage errors go to stderr. */
#include "../../src/cli/args.c"
#include "../../src/cli/out.c"
#include "../lib/test.h"

static const cli_cmd_t test_cmd = {"t", NULL, "", "wksp t A B [--x N] [--flag] [--tag T]...", ""};

static cli_t mk(int argc, char **argv) {
  cli_t c = {.cmd = &test_cmd, .argc = argc, .argv = argv};
  return c;
}

static void test_size(void) {
  cli_t c = mk(0, NULL);
  uint64_t v;
  CHECK_EQ(cli_size(&c, "S", "0", &v), CLI_GO);
  CHECK_EQ(v, 0);
  CHECK_EQ(cli_size(&c, "S", "1K", &v), CLI_GO);
  CHECK_EQ(v, 1024);
  CHECK_EQ(cli_size(&c, "S", "3KiB", &v), CLI_GO);
  CHECK_EQ(v, 3072);
  CHECK_EQ(cli_size(&c, "S", "5M", &v), CLI_GO);
  CHECK_EQ(v, 5ull << 20);
  CHECK_EQ(cli_size(&c, "S", "2GiB", &v), CLI_GO);
  CHECK_EQ(v, 2ull << 30);
  CHECK_EQ(cli_size(&c, "S", "1T", &v), CLI_GO);
  CHECK_EQ(v, 1ull << 40);
  CHECK_EQ(cli_size(&c, "S", "0x10", &v), CLI_GO);
  CHECK_EQ(v, 16);
  CHECK_EQ(cli_size(&c, "S", "18446744073709551615", &v), CLI_GO);
  CHECK_EQ(v, UINT64_MAX);
  CHECK_EQ(cli_size(&c, "S", "16777215T", &v), CLI_GO);
  CHECK_EQ(v, 16777215ull << 40);
  v = 7;
  static const char *const bad[] = {"18446744073709551616", "16777216T", "17179869184G", "1k", "1 K", "", "K",
                                    "-1", "+1", "1.5G", "1KB", "0x", "0xg", "1Ki", "1GiBx", " 1"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    CHECK_EQ(cli_size(&c, "S", bad[i], &v), CLI_USAGE);
    CHECK_EQ(v, 7); /* untouched on error */
  }
}

static void test_numbers(void) {
  cli_t c = mk(0, NULL);
  uint64_t v;
  uint32_t u;
  CHECK_EQ(cli_u64(&c, "N", "0xFFFFFFFFFFFFFFFF", &v), CLI_GO);
  CHECK_EQ(v, UINT64_MAX);
  CHECK_EQ(cli_u64(&c, "N", "0x10000000000000000", &v), CLI_USAGE);
  CHECK_EQ(cli_u64(&c, "N", "1K", &v), CLI_USAGE);
  CHECK_EQ(cli_u64(&c, "N", "00012", &v), CLI_GO);
  CHECK_EQ(v, 12);
  CHECK_EQ(cli_u32(&c, "N", "4294967295", &u), CLI_GO);
  CHECK_EQ(u, UINT32_MAX);
  CHECK_EQ(cli_u32(&c, "N", "4294967296", &u), CLI_USAGE);
  CHECK_EQ(cli_tag(&c, "T", "0", &v), CLI_USAGE);
  CHECK_EQ(cli_tag(&c, "T", "1", &v), CLI_GO);
  CHECK_EQ(v, 1);
}

static void test_mode(void) {
  cli_t c = mk(0, NULL);
  uint32_t m = 0;
  CHECK_EQ(cli_mode(&c, "M", "0600", &m), CLI_GO);
  CHECK_EQ(m, 0600);
  CHECK_EQ(cli_mode(&c, "M", "7777", &m), CLI_GO);
  CHECK_EQ(m, 07777);
  CHECK_EQ(cli_mode(&c, "M", "0", &m), CLI_GO);
  CHECK_EQ(m, 0);
  CHECK_EQ(cli_mode(&c, "M", "10000", &m), CLI_USAGE);
  CHECK_EQ(cli_mode(&c, "M", "8", &m), CLI_USAGE);
  CHECK_EQ(cli_mode(&c, "M", "", &m), CLI_USAGE);
  CHECK_EQ(cli_mode(&c, "M", "0x1ff", &m), CLI_USAGE);
}

static void test_page(void) {
  cli_t c = mk(0, NULL);
  wksp_page_t p;
  CHECK_EQ(cli_page(&c, "P", "huge", &p), CLI_GO);
  CHECK_EQ(p, WKSP_PAGE_HUGE);
  CHECK_EQ(cli_page(&c, "P", "gigantic", &p), CLI_GO);
  CHECK_EQ(p, WKSP_PAGE_GIGANTIC);
  CHECK_EQ(cli_page(&c, "P", "Normal", &p), CLI_USAGE);
}

static void test_human(void) {
  char b[CLI_HUMAN_MAX];
  CHECK(!strcmp(cli_human(0, 0, b), "0 B"));
  CHECK(!strcmp(cli_human(1023, 0, b), "1023 B"));
  CHECK(!strcmp(cli_human(1024, 0, b), "1.00 KiB"));
  CHECK(!strcmp(cli_human(1536, 0, b), "1.50 KiB"));
  CHECK(!strcmp(cli_human(10 << 10, 0, b), "10.0 KiB"));
  CHECK(!strcmp(cli_human(100 << 10, 0, b), "100 KiB"));
  /* Never "1024 KiB": values that round to 1024 move up a unit. */
  CHECK(!strcmp(cli_human((1 << 20) - 1, 0, b), "1.00 MiB"));
  CHECK(!strcmp(cli_human(1ull << 30, 0, b), "1.00 GiB"));
  CHECK(!strcmp(cli_human(UINT64_MAX, 0, b), "16.0 EiB"));
  CHECK(!strcmp(cli_human(UINT64_MAX, 1, b), "18446744073709551615"));
  CHECK(!strcmp(cli_human(5, 1, b), "5"));
}

/* cli_json_str(s) as a string. */
static const char *json(const char *s) {
  static char out[256];
  FILE *f = fmemopen(out, sizeof out, "w");
  if (!f) return "";
  cli_json_str(f, s);
  fclose(f);
  return out;
}

static void test_json_str(void) {
  CHECK(!strcmp(json("plain"), "\"plain\""));
  CHECK(!strcmp(json("a\"b\\c"), "\"a\\\"b\\\\c\""));
  CHECK(!strcmp(json("\n\r\t\x01\x1f\x7f"), "\"\\n\\r\\t\\u0001\\u001f\\u007f\""));
  CHECK(!strcmp(json("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\""));
  /* Not UTF-8: each such byte becomes the code point of its value. */
  CHECK(!strcmp(json("\xff"), "\"\\u00ff\""));
  CHECK(!strcmp(json("x\xc3"), "\"x\\u00c3\""));           /* truncated at the end */
  CHECK(!strcmp(json("\xc3x"), "\"\\u00c3x\""));           /* bad continuation */
  CHECK(!strcmp(json("\xc0\xaf"), "\"\\u00c0\\u00af\""));  /* overlong */
  CHECK(!strcmp(json("\xed\xa0\x80"), "\"\\u00ed\\u00a0\\u0080\"")); /* surrogate */
  CHECK(!strcmp(json("\xf4\x90\x80\x80"), "\"\\u00f4\\u0090\\u0080\\u0080\"")); /* > U+10FFFF */
  CHECK(!strcmp(json(""), "\"\""));
}

static void test_parse(void) {
  char *argv[] = {"a", "--x=5", "--flag", "b", "--tag", "1", "--tag=2", NULL};
  cli_t c = mk(7, argv);
  const char *x = NULL;
  int flag = 0;
  cli_list_t tags;
  const cli_opt_t opts[] = {{"x", 'x', CLI_OPT_ARG, &x, NULL, NULL},
                            {"flag", 0, CLI_OPT_FLAG, &flag, NULL, NULL},
                            {"tag", 0, CLI_OPT_LIST, &tags, NULL, NULL},
                            {NULL, 0, 0, NULL, NULL, NULL}};
  CHECK_EQ(cli_parse(&c, opts, 2, 2), CLI_GO);
  CHECK_EQ(c.npos, 2);
  CHECK(!strcmp(c.pos[0], "a") && !strcmp(c.pos[1], "b"));
  CHECK(x && !strcmp(x, "5"));
  CHECK_EQ(flag, 1);
  CHECK_EQ(tags.n, 2);
  CHECK(!strcmp(tags.v[0], "1") && !strcmp(tags.v[1], "2"));
  cli_free(&c);

  char *argv2[] = {"-x7", "--", "-", "--flag", NULL};
  c = mk(4, argv2);
  x = NULL;
  flag = 0;
  CHECK_EQ(cli_parse(&c, opts, 2, 2), CLI_GO);
  CHECK(x && !strcmp(x, "7"));
  CHECK_EQ(flag, 0); /* after "--" */
  CHECK(!strcmp(c.pos[0], "-") && !strcmp(c.pos[1], "--flag"));
  cli_free(&c);

  char *argv3[] = {"a", "-x", "--help", "b", NULL}; /* an option's value may look like an option */
  c = mk(4, argv3);
  CHECK_EQ(cli_parse(&c, opts, 2, 2), CLI_GO);
  CHECK(!strcmp(x, "--help"));
  cli_free(&c);

  char *bad1[] = {"a", NULL};
  c = mk(1, bad1);
  CHECK_EQ(cli_parse(&c, opts, 2, 2), CLI_USAGE); /* missing B */
  cli_free(&c);
  char *bad2[] = {"a", "b", "c", NULL};
  c = mk(3, bad2);
  CHECK_EQ(cli_parse(&c, opts, 2, 2), CLI_USAGE); /* extra */
  cli_free(&c);
  char *bad3[] = {"a", "b", "--nope", NULL};
  c = mk(3, bad3);
  CHECK_EQ(cli_parse(&c, opts, 2, 2), CLI_USAGE);
  cli_free(&c);
  char *bad4[] = {"a", "b", "--x", NULL};
  c = mk(3, bad4);
  CHECK_EQ(cli_parse(&c, opts, 2, 2), CLI_USAGE); /* value missing */
  cli_free(&c);
  char *bad5[] = {"a", "b", "--flag=1", NULL};
  c = mk(3, bad5);
  CHECK_EQ(cli_parse(&c, opts, 2, 2), CLI_USAGE);
  cli_free(&c);
}

static void test_pos_name(void) {
  char n[64];
  CHECK(!strcmp(pos_name("wksp t A B [--x N]", 0, n), "A"));
  CHECK(!strcmp(pos_name("wksp t A B [--x N]", 1, n), "B"));
  CHECK(!strcmp(pos_name("wksp t A B [--x N]", 2, n), ""));
  CHECK(!strcmp(pos_name("wksp t [--x N] A [FILE|-]", 0, n), "A"));
  CHECK(!strcmp(pos_name("wksp new NAME SIZE [--a B]\n       wksp new NAME --from X", 1, n), "SIZE"));
}

int main(void) {
  TEST_RUN(test_size);
  TEST_RUN(test_numbers);
  TEST_RUN(test_mode);
  TEST_RUN(test_page);
  TEST_RUN(test_human);
  TEST_RUN(test_json_str);
  TEST_RUN(test_parse);
  TEST_RUN(test_pos_name);
  return test_done();
}
