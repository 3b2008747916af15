/* Messages and output formatting shared by the commands. */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* "wksp: <cmd>: " + formatted text + optional ": <why>" + newline, as one
 * write so that concurrent processes do not interleave lines. */
static void say(const cli_t *c, const char *why, const char *fmt, va_list ap) {
  char line[2048];
  int n = snprintf(line, sizeof line, "wksp: %s: ", c->cmd ? c->cmd->name : "wksp");
  if (n < 0) return;
  size_t len = (size_t)n;
  int m = vsnprintf(line + len, sizeof line - len, fmt, ap);
  if (m > 0) len += (size_t)m;
  if (len > sizeof line - 2) len = sizeof line - 2;
  if (why && *why) {
    int k = snprintf(line + len, sizeof line - len, ": %s", why);
    if (k > 0) len += (size_t)k;
    if (len > sizeof line - 2) len = sizeof line - 2;
  }
  line[len++] = '\n';
  fflush(stdout);
  ssize_t w = write(2, line, len);
  (void)w;
}

int cli_usage_err(cli_t *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  say(c, NULL, fmt, ap);
  va_end(ap);
  return CLI_USAGE;
}

int cli_lib_err(cli_t *c, const char *fmt, ...) {
  const char *why = wksp_errmsg();
  va_list ap;
  va_start(ap, fmt);
  say(c, *why ? why : "unknown error", fmt, ap);
  va_end(ap);
  return CLI_FAIL;
}

int cli_os_err(cli_t *c, int errnum, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  say(c, strerror(errnum), fmt, ap);
  va_end(ap);
  return CLI_FAIL;
}

int cli_fail(cli_t *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  say(c, NULL, fmt, ap);
  va_end(ap);
  return CLI_FAIL;
}

void cli_note(cli_t *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  say(c, NULL, fmt, ap);
  va_end(ap);
}

int cli_flush(cli_t *c, int rc) {
  errno = 0;
  if (fflush(stdout) || ferror(stdout)) {
    int e = errno ? errno : EIO;
    clearerr(stdout);
    /* A failure already reported keeps its status; only a silent success
     * turns into a failure. */
    if (rc == CLI_OK) return cli_os_err(c, e, "writing to standard output");
  }
  return rc;
}

char *cli_human(uint64_t sz, int exact, char buf[CLI_HUMAN_MAX]) {
  static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (exact || sz < 1024) {
    snprintf(buf, CLI_HUMAN_MAX, exact ? "%llu" : "%llu B", (unsigned long long)sz);
    return buf;
  }
  int u = 0;
  double v = (double)sz;
  /* 1023.5 and up would print as "1024": show the next unit instead. */
  while (v >= 1023.5 && u < 6) {
    v /= 1024.0;
    u++;
  }
  /* Three significant digits are enough to read; --bytes gives all. */
  snprintf(buf, CLI_HUMAN_MAX, v < 10.0 ? "%.2f %s" : v < 100.0 ? "%.1f %s" : "%.0f %s", v, unit[u]);
  return buf;
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if it is not one. */
static size_t utf8_len(const unsigned char *p) {
  size_t n = p[0] >= 0xf0 && p[0] <= 0xf4 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc2 ? 2 : 0;
  if (!n || p[0] >= 0xf5) return 0;
  for (size_t i = 1; i < n; i++)
    if ((p[i] & 0xc0) != 0x80) return 0;
  if (n == 3 && ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] >= 0xa0))) return 0;
  if (n == 4 && ((p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] >= 0x90))) return 0;
  return n;
}

void cli_json_str(FILE *f, const char *s) {
  fputc('"', f);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    switch (*p) {
    case '"': fputs("\\\"", f); continue;
    case '\\': fputs("\\\\", f); continue;
    case '\n': fputs("\\n", f); continue;
    case '\r': fputs("\\r", f); continue;
    case '\t': fputs("\\t", f); continue;
    default: break;
    }
    if (*p < 0x20 || *p == 0x7f) {
      fprintf(f, "\\u%04x", *p);
    } else if (*p < 0x80) {
      fputc(*p, f);
    } else {
      /* Text from a checkpoint may be any bytes: valid UTF-8 passes, any
       * other byte is shown as the code point of the same value, so the
       * output is always valid JSON. */
      size_t n = utf8_len(p);
      if (n) {
        fwrite(p, 1, n, f);
        p += n - 1;
      } else {
        fprintf(f, "\\u%04x", *p);
      }
    }
  }
  fputc('"', f);
}

const char *cli_page_name(wksp_page_t page) {
  switch (page) {
  case WKSP_PAGE_NORMAL: return "normal";
  case WKSP_PAGE_HUGE: return "huge";
  case WKSP_PAGE_GIGANTIC: return "gigantic";
  default: return "unknown";
  }
}

uint32_t cli_ncpu(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n < 1 ? 1u : n > 1024 ? 1024u : (uint32_t)n;
}

double cli_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
