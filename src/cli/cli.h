/* src/cli/cli.h: internals of the wksp command-line tool.
 *
 * Every command is a function `int cmd_x(cli_t *c)` that parses its own
 * arguments with cli_parse(), makes one library call and prints the result.
 * It returns the process exit status:
 *   0 (CLI_OK)     success
 *   1 (CLI_FAIL)   the operation failed (library error, I/O error)
 *   2 (CLI_USAGE)  the command line cannot be right (unknown command or
 *                  option, missing or extra argument, malformed number,
 *                  size, mode, tag, name or address)
 *   3 (CLI_TROUBLE) diff only, which keeps 1 for "they differ" (as cmp(1)
 *                  and diff(1) do): the comparison failed
 * Every failure prints exactly one line on stderr and nothing on stdout:
 *   wksp: <command>: <what failed>: <why>
 * where <what failed> names the operation and its subject in the tool's
 * terms and <why> is usually wksp_errcause() (the library's cause, without
 * the library's function names).
 *
 * Options mean the same in every command that takes them (cli_opt_*()
 * below give them one name and one help text): -q/--quiet prints nothing
 * but errors and warnings; -v/--verbose adds detail; --json prints the
 * result as one JSON object; --bytes prints sizes as exact byte counts.
 * Each command's option table is both what it accepts and what its --help
 * lists, so the two cannot disagree. */
#ifndef WKSP_CLI_CLI_H
#define WKSP_CLI_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <wksp/checkpt.h>
#include <wksp/shmem.h>
#include <wksp/wksp.h>

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2, CLI_TROUBLE = 3 };

/* cli_parse() result meaning "arguments are fine, go on" (never an exit
 * status). */
#define CLI_GO (-1)

typedef struct cli_cmd cli_cmd_t;

typedef struct {
  const cli_cmd_t *cmd; /* the command being run */
  int argc;             /* arguments after the command name */
  char **argv;
  int npos;             /* positional arguments found by cli_parse */
  char **pos;           /* (owned: cli_free) */
  void *lists[8];       /* arrays of CLI_OPT_LIST options (owned: cli_free) */
  int nlists;
} cli_t;

typedef int (*cli_fn_t)(cli_t *c);

struct cli_cmd {
  const char *name;
  cli_fn_t fn;
  const char *summary; /* one line for `wksp help` */
  const char *usage;   /* synopsis lines, without the leading "usage: " */
  const char *help;    /* description, for --help (the options follow it,
                          from the command's option table) */
};

/* ---- options ------------------------------------------------------------ */

/* LEVEL: a detail level, int* out: "-v N", "-vN", "-vv" (2: the number of
 * v's), "--verbose[=N]"; a bare -v or --verbose takes the next argument
 * as its level if that is a number, else means 1. */
enum { CLI_OPT_FLAG, CLI_OPT_ARG, CLI_OPT_LIST, CLI_OPT_LEVEL };

/* Repeated option values, in command-line order (points into argv). */
typedef struct {
  const char **v;
  int n;
} cli_list_t;

typedef struct {
  const char *name; /* long name without "--" ("part-max"); NULL ends a table */
  char short_name;  /* 'v' for -v, or 0 */
  int kind;         /* CLI_OPT_* */
  void *out;        /* FLAG: int* (set to 1); ARG: const char** (last value
                       wins); LIST: cli_list_t* (every value); LEVEL: int* */
  const char *arg;  /* the value's name in --help ("N", "v2|v3"); NULL for a flag */
  const char *help; /* what it does, for --help ('\n' starts a continuation line) */
} cli_opt_t;

/* The options every command spells and explains the same way. */
static inline cli_opt_t cli_opt_json(int *out) {
  return (cli_opt_t){"json", 0, CLI_OPT_FLAG, out, NULL, "print one JSON object (\"schema\":1; exact integers)"};
}
static inline cli_opt_t cli_opt_bytes(int *out) {
  return (cli_opt_t){"bytes", 0, CLI_OPT_FLAG, out, NULL, "print sizes as exact byte counts"};
}
static inline cli_opt_t cli_opt_quiet(int *out) {
  return (cli_opt_t){"quiet", 'q', CLI_OPT_FLAG, out, NULL,
                     "print nothing but errors and warnings (no progress,\nno report: the exit status tells)"};
}
/* -v as a flag; `more` says what it adds. */
static inline cli_opt_t cli_opt_verbose(int *out, const char *more) {
  return (cli_opt_t){"verbose", 'v', CLI_OPT_FLAG, out, NULL, more};
}
static inline cli_opt_t cli_opt_threads(const char **out) {
  return (cli_opt_t){"threads", 0, CLI_OPT_ARG, out, "N", "worker threads (default: online CPUs)"};
}
static inline cli_opt_t cli_opt_end(void) { return (cli_opt_t){NULL, 0, 0, NULL, NULL, NULL}; }

/* Parses c->argv against opts (a table ended by a NULL name): options and
 * positional arguments may be mixed; "--" ends options; "--opt=value",
 * "--opt value", "-x value" and "-xvalue" are accepted; a lone "-" is a
 * positional argument.  --help / -h prints the command's help on stdout:
 * its usage, its description and an option list made from opts.  An
 * unknown option gets a usage error naming the nearest known one.
 * Returns CLI_GO when the command should run (with pos_min <= npos <=
 * pos_max positional arguments in c->pos), CLI_OK after --help, or
 * CLI_USAGE after printing a usage error. */
int cli_parse(cli_t *c, const cli_opt_t *opts, int pos_min, int pos_max);

/* Frees what cli_parse allocated. */
void cli_free(cli_t *c);

/* Usage error "A and B exclude each other" when both are set. */
int cli_exclusive(cli_t *c, int a, const char *a_name, int b, const char *b_name);

/* Of the n candidates, the one word is most likely a typo of (edit
 * distance at most 2, a swap of neighbours counting 1, and less than half
 * of word's length), or the only one that starts with word; else NULL. */
const char *cli_nearest(const char *word, const char *const *cand, size_t n);

/* ---- argument values (each prints a usage error and returns CLI_USAGE on
 * bad input, else CLI_GO) -------------------------------------------------- */

/* Unsigned decimal or 0x-hex 64-bit integer; `what` names the argument in
 * messages ("--seed", "TAG"). */
int cli_u64(cli_t *c, const char *what, const char *s, uint64_t *out);
int cli_u32(cli_t *c, const char *what, const char *s, uint32_t *out);
/* Byte size: an integer with an optional suffix K, M, G, T (powers of 1024,
 * same as KiB, MiB, GiB, TiB). */
int cli_size(cli_t *c, const char *what, const char *s, uint64_t *out);
/* Permission bits in octal (at most 07777). */
int cli_mode(cli_t *c, const char *what, const char *s, uint32_t *out);
/* Tag: a non-zero 64-bit integer. */
int cli_tag(cli_t *c, const char *what, const char *s, uint64_t *out);
int cli_page(cli_t *c, const char *what, const char *s, wksp_page_t *out);
/* Workspace name (wksp_name_check). */
int cli_name(cli_t *c, const char *what, const char *s);
/* "NAME:GADDR" (wksp_addr_parse). */
int cli_addr(cli_t *c, const char *what, const char *s, char name[WKSP_NAME_MAX],
             uint64_t *gaddr);

/* Attaches workspace `name` (checked first: usage error) with wksp_attach
 * flags; prints the failure. */
int cli_attach(cli_t *c, const char *name, int flags, wksp_t **out);

/* Every partition of w (wksp_part_list) into a new array (freed by the
 * caller); prints the failure. */
int cli_list_parts(cli_t *c, wksp_t *w, wksp_part_t **parts, size_t *cnt);

/* --threads S (NULL: the number of CPUs); at least 1. */
int cli_threads(cli_t *c, const char *s, uint32_t *out);

/* The members pos[first ..] of a chain BASE DELTA...: "-" (at most once,
 * else a usage error; not a terminal) becomes "/dev/stdin", which the
 * library spools (a chain is read at random). */
int cli_chain_stdin(cli_t *c, int first);

/* ---- messages ----------------------------------------------------------- */

/* Prints "wksp: <cmd>: <what>: <why>" and returns CLI_USAGE. */
int cli_usage_err(cli_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "wksp: <cmd>: <what>: <wksp_errcause()>" and returns CLI_FAIL. */
int cli_lib_err(cli_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "wksp: <cmd>: <what>: <strerror(errnum)>" and returns CLI_FAIL. */
int cli_os_err(cli_t *c, int errnum, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Prints "wksp: <cmd>: <message>" and returns CLI_FAIL. */
int cli_fail(cli_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints "wksp: <cmd>: <message>" for a command that goes on (a note, not
 * a failure). */
void cli_note(cli_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Flushes stdout; CLI_FAIL with a message if any output was lost. */
int cli_flush(cli_t *c, int rc);

/* ---- output helpers ----------------------------------------------------- */

enum { CLI_HUMAN_MAX = 32 };

/* "512 B", "1.5 KiB", "1.0 GiB"; the exact decimal byte count if `exact`.
 * Returns buf. */
char *cli_human(uint64_t sz, int exact, char buf[CLI_HUMAN_MAX]);

/* Writes s as a JSON string (quotes and escapes included). */
void cli_json_str(FILE *f, const char *s);
/* Writes s for a person to read: C-style escapes for control bytes,
 * invalid UTF-8 and the like (src/util/esc.h), no quotes.  For strings a
 * file or the command line supplied. */
void cli_text_str(FILE *f, const char *s);
/* Writes s as XML character data or attribute value contents: escaped as
 * for a person (control bytes, invalid UTF-8), then <, >, & and " as
 * entities, so that any bytes give well-formed XML. */
void cli_xml_str(FILE *f, const char *s);

/* Name of a page kind ("normal", "huge", "gigantic"). */
const char *cli_page_name(wksp_page_t page);

/* Number of online CPUs (at least 1). */
uint32_t cli_ncpu(void);

/* Seconds on a monotonic clock. */
double cli_now(void);

/* ---- commands ----------------------------------------------------------- */

int cmd_new(cli_t *c);
int cmd_delete(cli_t *c);
int cmd_list(cli_t *c);
int cmd_alloc(cli_t *c);
int cmd_free(cli_t *c);
int cmd_tag(cli_t *c);
int cmd_tag_free(cli_t *c);
int cmd_memset(cli_t *c);
int cmd_write(cli_t *c);
int cmd_read(cli_t *c);
int cmd_usage(cli_t *c);
int cmd_query(cli_t *c);
int cmd_check(cli_t *c);
int cmd_verify(cli_t *c);
int cmd_rebuild(cli_t *c);
int cmd_reset(cli_t *c);
int cmd_checkpt(cli_t *c);
int cmd_restore(cli_t *c);
int cmd_index(cli_t *c);
int cmd_fold(cli_t *c);
int cmd_info(cli_t *c);
int cmd_diff(cli_t *c);
int cmd_styles(cli_t *c);
int cmd_map(cli_t *c);

#endif /* WKSP_CLI_CLI_H */
