/* Command-line parsing: options, numbers, sizes, modes, tags, names and
 * addresses.  Everything here is strict: a value is accepted only if every
 * byte of it makes sense, and the error says which argument was wrong and
 * why. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- options ------------------------------------------------------------ */

static const cli_opt_t *opt_find_long(const cli_opt_t *opts, const char *name, size_t len) {
  for (const cli_opt_t *o = opts; o->name; o++)
    if (strlen(o->name) == len && !memcmp(o->name, name, len)) return o;
  return NULL;
}

static const cli_opt_t *opt_find_short(const cli_opt_t *opts, char ch) {
  for (const cli_opt_t *o = opts; o->name; o++)
    if (o->short_name && o->short_name == ch) return o;
  return NULL;
}

static void opt_store(const cli_opt_t *o, const char *val) {
  switch (o->kind) {
  case CLI_OPT_FLAG: *(int *)o->out = 1; break;
  case CLI_OPT_LEVEL: *(int *)o->out = atoi(val); break; /* digits only, checked by parse_level */
  case CLI_OPT_ARG: *(const char **)o->out = val; break;
  default: {
    cli_list_t *l = o->out;
    /* Room for every argument was reserved by cli_parse (l->v has argc slots). */
    l->v[l->n++] = val;
  }
  }
}

enum { HELP_COL = 23 }; /* where option descriptions start */

/* "  -v, --verbose LEVEL  text" lines; a description that does not fit
 * beside its option starts on the next line. */
static void print_opts(const cli_opt_t *opts) {
  for (const cli_opt_t *o = opts; o->name; o++) {
    char left[96], sh[8] = "";
    const char *a = o->arg ? o->arg : "";
    if (o->short_name) snprintf(sh, sizeof sh, "-%c, ", o->short_name);
    if (o->kind == CLI_OPT_LEVEL) snprintf(left, sizeof left, "  %s--%s [%s]", sh, o->name, a);
    else snprintf(left, sizeof left, "  %s--%s%s%s", sh, o->name, *a ? " " : "", a);
    const char *h = o->help ? o->help : "";
    int w = (int)strlen(left);
    if (w >= HELP_COL - 1) printf("%s\n%*s", left, HELP_COL, "");
    else printf("%-*s", HELP_COL, left);
    for (const char *nl; (nl = strchr(h, '\n')); h = nl + 1) printf("%.*s\n%*s", (int)(nl - h), h, HELP_COL, "");
    printf("%s\n", h);
  }
}

static void print_help(const cli_cmd_t *cmd, const cli_opt_t *opts) {
  printf("usage: %s\n\n%s", cmd->usage, cmd->help);
  if (opts->name) {
    printf("\n");
    print_opts(opts);
  }
}

/* The options' long names, for cli_nearest. */
static const char *opt_nearest(const cli_opt_t *opts, const char *word) {
  const char *names[64];
  size_t n = 0;
  for (const cli_opt_t *o = opts; o->name && n < sizeof names / sizeof names[0]; o++) names[n++] = o->name;
  return cli_nearest(word, names, n);
}

static int unknown_opt(cli_t *c, const cli_opt_t *opts, const char *shown) {
  const char *near = shown[1] == '-' ? opt_nearest(opts, shown + 2) : NULL;
  if (near)
    return cli_usage_err(c, "unknown option \"%s\"; did you mean --%s? (see 'wksp %s --help')", shown, near,
                         c->cmd->name);
  return cli_usage_err(c, "unknown option \"%s\" (see 'wksp %s --help')", shown, c->cmd->name);
}

static int all_digits(const char *s) {
  if (!*s) return 0;
  for (; *s; s++)
    if (*s < '0' || *s > '9') return 0;
  return 1;
}

/* A LEVEL option: "-vv..." counts v's, "-vN" and "--verbose=N" give N, a
 * bare one takes a following number or means 1.  Returns the level's
 * digits in *val (buf for a count; for opt_store) or a usage error. */
static int parse_level(cli_t *c, const cli_opt_t *o, const char *shown, const char *attached, int *i,
                       char buf[16], const char **val) {
  if (attached) {
    size_t k = 0;
    while (shown[1] != '-' && attached[k] == o->short_name) k++;
    if (k && !attached[k]) {
      snprintf(buf, 16, "%zu", k + 1); /* "-vv": the first v is the option */
      *val = buf;
      return CLI_GO;
    }
    if (!all_digits(attached) || strlen(attached) > 9)
      return cli_usage_err(c, "bad %s \"%s\": LEVEL is a number, or repeat the v (-vv)", shown, attached);
    *val = attached;
    return CLI_GO;
  }
  if (*i + 1 < c->argc && all_digits(c->argv[*i + 1]) && strlen(c->argv[*i + 1]) <= 9) {
    *val = c->argv[++*i];
    return CLI_GO;
  }
  *val = "1";
  return CLI_GO;
}

/* Handles argv[*i], an option; advances *i past its value if it takes one. */
static int parse_opt(cli_t *c, const cli_opt_t *opts, int *i) {
  const char *arg = c->argv[*i];
  const cli_opt_t *o;
  const char *val = NULL;
  char shown[64], level[16];
  if (arg[1] == '-') {
    const char *name = arg + 2, *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    o = opt_find_long(opts, name, len);
    snprintf(shown, sizeof shown, "--%.*s", (int)(len < 40 ? len : 40), name);
    if (!o) return unknown_opt(c, opts, shown);
    if (eq) {
      if (o->kind == CLI_OPT_FLAG) return cli_usage_err(c, "option %s takes no value", shown);
      val = eq + 1;
    }
  } else {
    o = opt_find_short(opts, arg[1]);
    snprintf(shown, sizeof shown, "-%c", arg[1]);
    if (!o) return unknown_opt(c, opts, shown);
    if (arg[2]) {
      if (o->kind == CLI_OPT_FLAG) return cli_usage_err(c, "option %s takes no value (got \"%s\")", shown, arg);
      val = arg + 2;
    }
  }
  if (o->kind == CLI_OPT_LEVEL) {
    int rc = parse_level(c, o, shown, val, i, level, &val);
    if (rc != CLI_GO) return rc;
  }
  if (o->kind != CLI_OPT_FLAG && !val) {
    if (*i + 1 >= c->argc) return cli_usage_err(c, "option %s needs a value", shown);
    val = c->argv[++*i];
  }
  opt_store(o, val);
  return CLI_GO;
}

/* The first synopsis line (commands with two forms list both in usage). */
static const char *usage_line(const char *usage) {
  static char line[256];
  size_t n = strcspn(usage, "\n");
  snprintf(line, sizeof line, "%.*s", (int)(n < 255 ? n : 255), usage);
  return line;
}

/* The k-th positional argument's name in the synopsis "wksp CMD A B [--x N]"
 * (words outside brackets after the command name), or "" if there is none. */
static const char *pos_name(const char *usage, int k, char out[64]) {
  const char *p = usage_line(usage);
  int depth = 0, word = 0;
  out[0] = 0;
  while (*p) {
    while (*p == ' ') p++;
    size_t n = strcspn(p, " ");
    if (!n) break;
    int positional = depth == 0 && *p != '[' && word >= 2;
    for (size_t i = 0; i < n; i++) depth += (p[i] == '[') - (p[i] == ']');
    if (positional && k-- == 0) {
      snprintf(out, 64, "%.*s", (int)(n < 63 ? n : 63), p);
      break;
    }
    word++;
    p += n;
  }
  return out;
}

int cli_parse(cli_t *c, const cli_opt_t *opts, int pos_min, int pos_max) {
  static const cli_opt_t none[] = {{NULL, 0, 0, NULL, NULL, NULL}};
  if (!opts) opts = none;
  for (const cli_opt_t *o = opts; o->name; o++) {
    if (o->kind != CLI_OPT_LIST) continue;
    cli_list_t *l = o->out;
    l->n = 0;
    if (c->nlists == (int)(sizeof c->lists / sizeof c->lists[0])) return cli_fail(c, "too many list options");
    l->v = calloc((size_t)c->argc + 1, sizeof *l->v);
    if (!l->v) return cli_fail(c, "out of memory");
    c->lists[c->nlists++] = l->v;
  }
  c->npos = 0;
  c->pos = calloc((size_t)c->argc + 1, sizeof *c->pos);
  if (!c->pos) return cli_fail(c, "out of memory");
  int only_pos = 0;
  for (int i = 0; i < c->argc; i++) {
    const char *arg = c->argv[i];
    if (only_pos || arg[0] != '-' || !arg[1]) {
      c->pos[c->npos++] = c->argv[i];
      continue;
    }
    if (!strcmp(arg, "--")) {
      only_pos = 1;
      continue;
    }
    if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
      print_help(c->cmd, opts);
      return cli_flush(c, CLI_OK);
    }
    int rc = parse_opt(c, opts, &i);
    if (rc != CLI_GO) return rc;
  }
  if (c->npos < pos_min) {
    char name[64];
    return cli_usage_err(c, "missing argument %s (usage: %s)", pos_name(c->cmd->usage, c->npos, name),
                         usage_line(c->cmd->usage));
  }
  if (c->npos > pos_max)
    return cli_usage_err(c, "unexpected argument \"%s\" (usage: %s)", c->pos[pos_max],
                         usage_line(c->cmd->usage));
  return CLI_GO;
}

int cli_exclusive(cli_t *c, int a, const char *a_name, int b, const char *b_name) {
  if (a && b) return cli_usage_err(c, "%s and %s exclude each other", a_name, b_name);
  return CLI_GO;
}

/* Edit distance between a and b (insert, delete, replace, or swap two
 * neighbours: 1 each), stopping at 3. */
static size_t distance(const char *a, const char *b) {
  enum { MAX = 64 };
  size_t la = strlen(a), lb = strlen(b);
  if (la >= MAX || lb >= MAX) return 3;
  size_t d[MAX][MAX];
  for (size_t i = 0; i <= la; i++) d[i][0] = i;
  for (size_t j = 0; j <= lb; j++) d[0][j] = j;
  for (size_t i = 1; i <= la; i++)
    for (size_t j = 1; j <= lb; j++) {
      size_t v = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
      if (d[i - 1][j] + 1 < v) v = d[i - 1][j] + 1;
      if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v)
        v = d[i - 2][j - 2] + 1;
      d[i][j] = v;
    }
  return d[la][lb] < 3 ? d[la][lb] : 3;
}

const char *cli_nearest(const char *word, const char *const *cand, size_t n) {
  const char *best = NULL, *prefixed = NULL;
  size_t best_d = 3, prefix_cnt = 0, len = strlen(word);
  for (size_t i = 0; i < n; i++) {
    size_t d = distance(word, cand[i]);
    if (d < best_d && 2 * d < len) best_d = d, best = cand[i];
    if (len && !strncmp(cand[i], word, len)) prefix_cnt++, prefixed = cand[i];
  }
  if (best) return best;
  return prefix_cnt == 1 ? prefixed : NULL;
}

void cli_free(cli_t *c) {
  free(c->pos);
  c->pos = NULL;
  for (int i = 0; i < c->nlists; i++) free(c->lists[i]);
  c->nlists = 0;
}

/* ---- numbers ------------------------------------------------------------ */

/* Parses the leading digits of s (decimal, or hex after "0x") into *out;
 * *end gets the first byte after them.  NULL on success, else the reason. */
static const char *parse_digits(const char *s, uint64_t *out, const char **end) {
  int base = 10;
  if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    base = 16;
    s += 2;
  }
  uint64_t v = 0;
  const char *p = s;
  for (;; p++) {
    unsigned d;
    if (*p >= '0' && *p <= '9') d = (unsigned)(*p - '0');
    else if (base == 16 && *p >= 'a' && *p <= 'f') d = (unsigned)(*p - 'a' + 10);
    else if (base == 16 && *p >= 'A' && *p <= 'F') d = (unsigned)(*p - 'A' + 10);
    else break;
    if (v > (UINT64_MAX - d) / (uint64_t)base) return "out of range (largest is 18446744073709551615)";
    v = v * (uint64_t)base + d;
  }
  if (p == s) return *s ? "not a number" : "empty";
  *out = v;
  *end = p;
  return NULL;
}

int cli_u64(cli_t *c, const char *what, const char *s, uint64_t *out) {
  const char *end = NULL, *why = parse_digits(s, out, &end);
  if (!why && *end) why = "not a number (trailing characters)";
  if (why) return cli_usage_err(c, "bad %s \"%s\": %s", what, s, why);
  return CLI_GO;
}

int cli_u32(cli_t *c, const char *what, const char *s, uint32_t *out) {
  uint64_t v;
  int rc = cli_u64(c, what, s, &v);
  if (rc != CLI_GO) return rc;
  if (v > UINT32_MAX) return cli_usage_err(c, "bad %s \"%s\": out of range (largest is 4294967295)", what, s);
  *out = (uint32_t)v;
  return CLI_GO;
}

int cli_size(cli_t *c, const char *what, const char *s, uint64_t *out) {
  static const struct {
    const char *suffix;
    int shift;
  } units[] = {{"", 0},    {"K", 10},   {"KiB", 10}, {"M", 20}, {"MiB", 20},
               {"G", 30},  {"GiB", 30}, {"T", 40},   {"TiB", 40}};
  uint64_t v;
  const char *end = NULL, *why = parse_digits(s, &v, &end);
  if (why) return cli_usage_err(c, "bad %s \"%s\": %s", what, s, why);
  for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
    if (strcmp(end, units[i].suffix)) continue;
    if (units[i].shift && v > (UINT64_MAX >> units[i].shift))
      return cli_usage_err(c, "bad %s \"%s\": too large (more than 2^64-1 bytes)", what, s);
    *out = v << units[i].shift;
    return CLI_GO;
  }
  return cli_usage_err(c, "bad %s \"%s\": unknown suffix \"%s\" (use K, M, G, T, KiB, MiB, GiB or TiB)",
                       what, s, end);
}

int cli_mode(cli_t *c, const char *what, const char *s, uint32_t *out) {
  uint32_t v = 0;
  const char *p = s;
  if (!*p) return cli_usage_err(c, "bad %s \"\": empty (want octal permission bits such as 0600)", what);
  for (; *p; p++) {
    if (*p < '0' || *p > '7')
      return cli_usage_err(c, "bad %s \"%s\": not an octal number (want e.g. 0600)", what, s);
    v = v * 8 + (uint32_t)(*p - '0');
    if (v > 07777) return cli_usage_err(c, "bad %s \"%s\": larger than 07777", what, s);
  }
  *out = v;
  return CLI_GO;
}

int cli_tag(cli_t *c, const char *what, const char *s, uint64_t *out) {
  int rc = cli_u64(c, what, s, out);
  if (rc != CLI_GO) return rc;
  if (!*out) return cli_usage_err(c, "bad %s \"%s\": tags start at 1 (0 marks free space)", what, s);
  return CLI_GO;
}

int cli_page(cli_t *c, const char *what, const char *s, wksp_page_t *out) {
  if (!strcmp(s, "normal")) *out = WKSP_PAGE_NORMAL;
  else if (!strcmp(s, "huge")) *out = WKSP_PAGE_HUGE;
  else if (!strcmp(s, "gigantic")) *out = WKSP_PAGE_GIGANTIC;
  else return cli_usage_err(c, "bad %s \"%s\": want normal, huge or gigantic", what, s);
  return CLI_GO;
}

int cli_name(cli_t *c, const char *what, const char *s) {
  if (wksp_name_check(s)) return cli_usage_err(c, "bad %s \"%s\": %s", what, s, wksp_errcause());
  return CLI_GO;
}

int cli_addr(cli_t *c, const char *what, const char *s, char name[WKSP_NAME_MAX], uint64_t *gaddr) {
  if (wksp_addr_parse(s, name, gaddr))
    return cli_usage_err(c, "bad %s \"%s\": %s", what, s, wksp_errcause());
  return CLI_GO;
}

/* ---- threads ------------------------------------------------------------- */

int cli_threads(cli_t *c, const char *s, uint32_t *out) {
  if (!s) {
    *out = cli_ncpu();
    return CLI_GO;
  }
  int rc = cli_u32(c, "--threads", s, out);
  if (rc == CLI_GO && !*out) return cli_usage_err(c, "bad --threads \"%s\": must be at least 1", s);
  return rc;
}

/* ---- chains -------------------------------------------------------------- */

int cli_chain_stdin(cli_t *c, int first) {
  int at = -1;
  for (int k = first; k < c->npos; k++) {
    if (strcmp(c->pos[k], "-")) continue;
    if (at >= 0) return cli_usage_err(c, "\"-\" twice in a chain: standard input can be read once");
    at = k;
  }
  if (at < 0) return CLI_GO;
  if (isatty(0)) return cli_fail(c, "reading a chain member from standard input: refusing to read from a terminal");
  c->pos[at] = (char *)"/dev/stdin"; /* the library spools a stream (only the array is owned) */
  return CLI_GO;
}
