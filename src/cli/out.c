/* Messages and output formatting shared by the commands. */
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/esc.h"

/* "wksp: <cmd>: " ("wksp: " before a command is known) + formatted text + optional ": <why>" + newline, as one
 * write so that concurrent processes do not interleave lines.  The text
 * quotes names, paths and messages that may hold any byte: the line is
 * escaped (util/esc.h) so that none of them reaches the terminal raw. */
static void say(const cli_t *c, const char *why, const char *fmt, va_list ap) {
  char raw[2048], line[2048];
  int n = c->cmd ? snprintf(raw, sizeof raw, "wksp: %s: ", c->cmd->name) : snprintf(raw, sizeof raw, "wksp: ");
  if (n < 0) return;
  size_t len = (size_t)n;
  int m = vsnprintf(raw + len, sizeof raw - len, fmt, ap);
  if (m > 0) len += (size_t)m;
  if (len > sizeof raw - 1) len = sizeof raw - 1;
  if (why && *why) {
    int k = snprintf(raw + len, sizeof raw - len, ": %s", why);
    if (k > 0) len += (size_t)k;
    if (len > sizeof raw - 1) len = sizeof raw - 1;
  }
  /* One byte is kept for the newline; a line too long is cut between
   * escapes. */
  len = wksp_private_esc(line, sizeof line - 1, raw, len, WKSP_ESC_LINE);
  if (len >= sizeof line - 1) len = strlen(line);
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
  const char *why = wksp_errcause();
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
    snprintf(buf, CLI_HUMAN_MAX, exact ? "%" PRIu64 : "%" PRIu64 " B", sz);
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

/* XML's spelling of byte c, or NULL when it stands for itself. */
static const char *xml_entity(char c) {
  switch (c) {
  case '<': return "&lt;";
  case '>': return "&gt;";
  case '&': return "&amp;";
  case '"': return "&quot;";
  default: return NULL;
  }
}

/* s escaped in `style`; with xml, the escaped text's markup characters as
 * entities too. */
static void put_esc(FILE *f, const char *s, wksp_esc_t style, int xml) {
  for (size_t at = 0, n = strlen(s); at < n;) {
    char unit[WKSP_ESC_UNIT_MAX];
    size_t len;
    at += wksp_private_esc_unit(s + at, n - at, style, unit, &len);
    for (size_t i = 0; xml && i < len; i++) {
      const char *e = xml_entity(unit[i]);
      if (e) fputs(e, f);
      else fputc(unit[i], f);
    }
    if (!xml) fwrite(unit, 1, len, f);
  }
}

void cli_json_str(FILE *f, const char *s) {
  fputc('"', f);
  put_esc(f, s, WKSP_ESC_JSON, 0);
  fputc('"', f);
}

void cli_text_str(FILE *f, const char *s) { put_esc(f, s, WKSP_ESC_C, 0); }

void cli_xml_str(FILE *f, const char *s) { put_esc(f, s, WKSP_ESC_LINE, 1); }

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
