#include "../lib/test.h"
#include "../../src/util/esc.h"

/* s (n bytes) escaped in `style`, in a static buffer. */
static const char *esc(const char *s, size_t n, wksp_esc_t style) {
  static char buf[512];
  size_t len = wksp_private_esc(buf, sizeof buf, s, n, style);
  return len < sizeof buf ? buf : "(did not fit)";
}

#define ESC_C(lit) esc(lit, sizeof lit - 1, WKSP_ESC_C)
#define ESC_JSON(lit) esc(lit, sizeof lit - 1, WKSP_ESC_JSON)
#define ESC_LINE(lit) esc(lit, sizeof lit - 1, WKSP_ESC_LINE)

static void test_printable_passes(void) {
  CHECK(!strcmp(ESC_C("host-1.example /tmp/a b~"), "host-1.example /tmp/a b~"));
  CHECK(!strcmp(ESC_JSON("x y"), "x y"));
  /* Valid UTF-8 text stays readable: e-acute, CJK, an emoji. */
  CHECK(!strcmp(ESC_C("caf\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x98\x80"), "caf\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x98\x80"));
  CHECK(!strcmp(ESC_JSON("caf\xc3\xa9"), "caf\xc3\xa9"));
}

static void test_controls(void) {
  CHECK(!strcmp(ESC_C("a\033[31mb\rc\x7f" "d\te\nf\x01"), "a\\x1b[31mb\\rc\\x7fd\\te\\nf\\x01"));
  CHECK(!strcmp(ESC_JSON("a\033b\rc\x7f" "d\te\nf\x01"), "a\\u001bb\\rc\\u007fd\\te\\nf\\u0001"));
  CHECK(!strcmp(ESC_LINE("a\033b\rc\x7f" "d\te\nf"), "a\\x1bb\\rc\\x7fd\\te\\nf"));
}

static void test_quotes_and_backslash(void) {
  CHECK(!strcmp(ESC_C("a\"b\\c"), "a\\\"b\\\\c"));
  CHECK(!strcmp(ESC_JSON("a\"b\\c"), "a\\\"b\\\\c"));
  /* A formatted line keeps its own quotes and escapes. */
  CHECK(!strcmp(ESC_LINE("name \"a\\x01\""), "name \"a\\x01\""));
}

static void test_invalid_utf8(void) {
  /* A lone continuation byte, a cut sequence, an overlong '/', a surrogate,
   * 0xff. */
  CHECK(!strcmp(ESC_C("\x80|\xc3|\xc0\xaf|\xed\xa0\x80|\xff"), "\\x80|\\xc3|\\xc0\\xaf|\\xed\\xa0\\x80|\\xff"));
  CHECK(!strcmp(ESC_JSON("\xff\xc3"), "\\u00ff\\u00c3"));
  /* A sequence cut by the end of the input. */
  CHECK(!strcmp(ESC_C("a\xe6\x97"), "a\\xe6\\x97"));
}

static void test_hidden_code_points(void) {
  /* C1 CSI (U+009B), right-to-left override (U+202E), line separator
   * (U+2028), first strong isolate (U+2068). */
  CHECK(!strcmp(ESC_C("a\xc2\x9b" "b\xe2\x80\xae" "c\xe2\x80\xa8" "d\xe2\x81\xa8"), "a\\u009bb\\u202ec\\u2028d\\u2068"));
  CHECK(!strcmp(ESC_JSON("\xc2\x9b"), "\\u009b"));
  /* Neighbours that are ordinary characters pass: U+00A0, U+2030. */
  CHECK(!strcmp(ESC_C("\xc2\xa0\xe2\x80\xb0"), "\xc2\xa0\xe2\x80\xb0"));
}

static void test_embedded_nul(void) {
  CHECK(!strcmp(esc("a\0b", 3, WKSP_ESC_C), "a\\x00b"));
}

static void test_cut_between_escapes(void) {
  char buf[6];
  /* "ab\x1b" needs 6 bytes: "ab" fits, the 4-byte escape does not. */
  CHECK_EQ(wksp_private_esc(buf, sizeof buf, "ab\033c", 4, WKSP_ESC_C), 7);
  CHECK(!strcmp(buf, "ab"));
  CHECK_EQ(wksp_private_esc(buf, sizeof buf, "abc", 3, WKSP_ESC_C), 3);
  CHECK(!strcmp(buf, "abc"));
  CHECK_EQ(wksp_private_esc(NULL, 0, "\033", 1, WKSP_ESC_C), 4);
  /* A UTF-8 sequence is never cut in the middle. */
  CHECK_EQ(wksp_private_esc(buf, 5, "abc\xc3\xa9", 5, WKSP_ESC_C), 5);
  CHECK(!strcmp(buf, "abc"));
}

/* Every single byte and every byte pair: the output is never empty, holds
 * no control byte, no 0x7f and no byte that is not part of valid UTF-8. */
static void test_no_raw_control_ever(void) {
  for (int style = WKSP_ESC_C; style <= WKSP_ESC_LINE; style++)
    for (unsigned a = 0; a < 256; a++)
      for (unsigned b = 0; b < 256; b++) {
        char in[2] = {(char)a, (char)b}, out[64];
        size_t len = wksp_private_esc(out, sizeof out, in, 2, (wksp_esc_t)style);
        CHECK(len >= 2 && len < sizeof out);
        for (size_t i = 0; i < len; i++) {
          unsigned char c = (unsigned char)out[i];
          CHECK(c >= 0x20 && c != 0x7f);
          /* only a valid pair that is not a C1 control passes */
          if (c >= 0x80) CHECK(a >= 0xc2 && a < 0xe0 && b >= 0x80 && b < 0xc0 && !(a == 0xc2 && b < 0xa0));
        }
      }
}

int main(void) {
  TEST_RUN(test_printable_passes);
  TEST_RUN(test_controls);
  TEST_RUN(test_quotes_and_backslash);
  TEST_RUN(test_invalid_utf8);
  TEST_RUN(test_hidden_code_points);
  TEST_RUN(test_embedded_nul);
  TEST_RUN(test_cut_between_escapes);
  TEST_RUN(test_no_raw_control_ever);
  return test_done();
}
