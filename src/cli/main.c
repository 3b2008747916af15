/* wksp: the command-line tool.  `wksp COMMAND [ARGS]`, git style; this file
 * holds the command table (names, synopses, descriptions) and the
 * dispatch; each command's options, with their help lines, are in its
 * option table (cmd_*.c).  See docs/wksp.1 for the manual. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

#ifndef WKSP_VERSION
#define WKSP_VERSION "unknown"
#endif

static const cli_cmd_t commands[] = {
    {"new", cmd_new, "create a named workspace",
     "wksp new NAME SIZE [--part-max N] [--page-size normal|huge|gigantic] [--mode OCTAL] [--seed N]\n"
     "       wksp new NAME --from CKPT [DELTA...] [--page-size normal|huge|gigantic] [--mode OCTAL]",
     "Creates the named shared-memory region NAME of SIZE bytes (rounded up to the\n"
     "page size) holding a new, empty workspace.  With --from, the workspace gets\n"
     "the partition count and data size of checkpoint CKPT (and its seed), so that\n"
     "`wksp restore NAME CKPT` fits; nothing is restored.  With deltas after NAME,\n"
     "the chain CKPT DELTA... (see checkpt --since) is restored into it; a chain\n"
     "refused (out of order, damaged) leaves no workspace NAME behind.\n"},
    {"delete", cmd_delete, "delete named workspaces", "wksp delete NAME...",
     "Removes each named workspace.  Processes attached to it keep their mapping\n"
     "until they detach.  A failure is reported (one line each) and the others\n"
     "are still deleted; the exit status is then 1.  A region NAME that holds no\n"
     "workspace (its header is missing or damaged) is removed too, with a warning\n"
     "on standard error saying so.\n"},
    {"list", cmd_list, "list named regions and the workspaces in them", "wksp list [--unused] [--json] [--bytes]",
     "Lists every named region in the shared-memory directory ($WKSP_SHMEM_DIR,\n"
     "default /dev/shm): size, page kind, permission bits, age since created and\n"
     "since modified (the file's birth time and mtime), and the processes that map\n"
     "it (pids from /proc/*/maps; \"(ro)\" read-only; incomplete without the\n"
     "permission to read other users' processes).  For a workspace: the share of\n"
     "its data in allocations, the allocation count and the largest free range;\n"
     "other regions are marked \"not a workspace\".  A lock whose holder died is\n"
     "noted.  Regions are only read (attached read-only, the lock never taken).\n"},
    {"alloc", cmd_alloc, "allocate; prints NAME:GADDR", "wksp alloc NAME SIZE [--align N] [--tag T] [--json]",
     "Allocates SIZE bytes in workspace NAME and prints the allocation's address\n"
     "as NAME:GADDR (GADDR is the global address, a byte offset valid in every\n"
     "process).\n"},
    {"free", cmd_free, "free an allocation", "wksp free NAME:GADDR",
     "Frees the allocation containing NAME:GADDR.\n"},
    {"tag", cmd_tag, "print the tag of an allocation", "wksp tag NAME:GADDR [--json]",
     "Prints the tag of the allocation containing NAME:GADDR, or 0 if the address\n"
     "is in free space; an address outside the data region is an error.\n"},
    {"tag-free", cmd_tag_free, "free every allocation with the given tags", "wksp tag-free NAME TAG...",
     "Frees every allocation of workspace NAME whose tag is one of TAG...\n"},
    {"memset", cmd_memset, "fill an allocation with one byte", "wksp memset NAME:GADDR BYTE",
     "Fills the whole allocation containing NAME:GADDR with BYTE (0..255,\n"
     "decimal or 0x hex).\n"},
    {"write", cmd_write, "copy bytes into an allocation", "wksp write NAME:GADDR [FILE|-]",
     "Copies the bytes of FILE (default: standard input) into the allocation\n"
     "containing NAME:GADDR, starting at GADDR.  Input longer than the room from\n"
     "GADDR to the end of the allocation is an error and nothing is written;\n"
     "bytes after the copied ones are left as they were.\n"},
    {"read", cmd_read, "print the bytes of an allocation", "wksp read NAME:GADDR [FILE|-]",
     "Writes the bytes of the whole allocation (partition) containing NAME:GADDR\n"
     "to FILE (created or truncated) or to standard output.\n"},
    {"usage", cmd_usage, "print usage figures", "wksp usage NAME [--tag T]... [--json] [--bytes]",
     "Prints the partition and byte counts of workspace NAME: total, free and\n"
     "used.  With --tag (repeatable), \"used\" counts only allocations with one of\n"
     "those tags.\n"},
    {"query", cmd_query, "list every partition", "wksp query NAME [--json] [--bytes]",
     "Prints the workspace's parameters and every partition, free ones (tag 0)\n"
     "included, in ascending address order.\n"},
    {"map", cmd_map, "draw a workspace's or checkpoint's data region",
     "wksp map NAME|FILE|- [--width N] [--rows N] [--svg FILE|-] [--color|--no-color] [--bytes]",
     "Draws the data region of workspace NAME, or of the workspace checkpoint FILE\n"
     "describes (\"-\": read from standard input), as a grid of cells of equal\n"
     "size (the last may be shorter), with a legend of the largest tags.  Each cell\n"
     "shows the tag with the most allocated bytes in it: plain, a letter per tag\n"
     "(upper case: the cell is all allocated; lower case: partly free; '#' and '+'\n"
     "for tags beyond the legend) and '.' for a free cell; in colour (on a\n"
     "terminal, unless NO_COLOR is set), a block in the tag's colour, a lower block\n"
     "for a partly free cell.  The argument is a file if it contains '/', else a\n"
     "workspace if one has that name, else a file in the current directory.\n"},
    {"check", cmd_check, "check and repair a workspace", "wksp check NAME [-q] [--json]",
     "Joins workspace NAME (checking its header) and takes its lock, which\n"
     "recovers the lock and finishes or rolls back an operation interrupted by a\n"
     "dead process; then checks every metadata structure and rebuilds what is\n"
     "derived from the partition records if it is damaged.  Prints \"NAME: ok\",\n"
     "or \"NAME: repaired: WHAT\" when something had to be repaired; fails when\n"
     "the damage cannot be repaired (the records or the header's sizes).\n"
     "See also `wksp verify`.\n"},
    {"verify", cmd_verify, "full metadata check", "wksp verify NAME [-q] [--json]",
     "Checks every metadata structure of workspace NAME.  Prints \"NAME: ok\", or\n"
     "fails naming the first inconsistency.  Needs only read access and changes\n"
     "nothing: a change left half done by a process that died is reported, not\n"
     "repaired ('wksp check NAME' repairs it).\n"},
    {"rebuild", cmd_rebuild, "rebuild derived metadata", "wksp rebuild NAME [--seed N]",
     "Rebuilds every derived metadata structure of workspace NAME from its\n"
     "partition records.  Never changes an allocation.\n"},
    {"reset", cmd_reset, "free every allocation", "wksp reset NAME",
     "Frees every allocation of workspace NAME (the seed is kept).\n"},
    {"checkpt", cmd_checkpt, "write a checkpoint of a workspace",
     "wksp checkpt NAME PATH|- [--style v2|v3] [--threads N] [--info TEXT] [--mode OCTAL] [--force]\n"
     "       [--verify] [--index | --since BASE] [-q|-v] [--json] [--bytes]",
     "Writes a checkpoint of workspace NAME to PATH (published atomically) or, with\n"
     "\"-\", to standard output (refused when that is a terminal).  Progress is\n"
     "shown on standard error when it is a terminal.  If the checkpoint does not\n"
     "fit a workspace it is later restored into, `wksp new NAME --from PATH`\n"
     "makes one that does.\n"},
    {"restore", cmd_restore, "restore a checkpoint into a workspace",
     "wksp restore NAME PATH|- [--seed N] [--threads N] [--verify-first] [--require-seal] [-q|-v]\n"
     "       [--json] [--bytes]\n"
     "       wksp restore NAME BASE DELTA... [options]",
     "Replaces every allocation of workspace NAME by those of the checkpoint at\n"
     "PATH or, with \"-\", read from standard input (a pipe or file).  With deltas\n"
     "(incremental checkpoints): the chain BASE DELTA... in order, all of it\n"
     "checked before NAME changes (one member may be \"-\": spooled first).  Progress is\n"
     "shown on standard error when it is a terminal.  NAME must hold the\n"
     "checkpoint's addresses: `wksp new NAME --from PATH` makes a workspace that\n"
     "does.\n"},
    {"info", cmd_info, "describe a checkpoint",
     "wksp info PATH|- [-v [LEVEL]|--level LEVEL] [--json] [--check [--threads N] [--require-seal]]\n"
     "       wksp info BASE DELTA... [-v LEVEL] [--json] [--check [--threads N]]",
     "Prints what checkpoint PATH (or standard input) holds.  LEVEL 0: style,\n"
     "name, seed, part_max, data_max; 1 (default): and the writer's identity;\n"
     "2: and mode, path, build and user info; 3: and a summary of the\n"
     "allocations and cgroup frames; 4: and every allocation; 5: and a hex dump\n"
     "of every allocation.  -vv is level 2, -vvv level 3, and so on.  --json gives\n"
     "the same fields (the header, the info frame and the totals; from level 3 the\n"
     "cgroup frames, from level 4 the allocations); it reads and checks the whole\n"
     "structure of the checkpoint.  With several files (a chain BASE DELTA...),\n"
     "each file, whether its base digest is the digest of the file before it,\n"
     "and the final state; --check then checks the whole chain as restore\n"
     "--verify-first does, without a workspace (a delta alone: every piece).\n"},
    {"diff", cmd_diff, "compare a workspace with a checkpoint",
     "wksp diff NAME PATH|- [--threads N] [-q|-v] [--json] [--require-seal]\n"
     "       wksp diff NAME BASE DELTA... [options]",
     "Compares workspace NAME with the checkpoint at PATH (or read from standard\n"
     "input): allocations with the same range, tag and bytes; with other bytes;\n"
     "with another tag; only in one of them.  With deltas after BASE, with the\n"
     "final state of the chain (see checkpt --since), as with a full checkpoint\n"
     "of that state; a chain out of order is refused.  Prints the counts and the\n"
     "lowest difference (-v: every difference, in address order).  Exit status, as\n"
     "cmp(1): 0 the same, 1 they differ, 2 usage error, 3 the comparison failed\n"
     "(also a checkpoint whose seal is broken, or not sealed with --require-seal).\n"},
    {"index", cmd_index, "write the index sidecar of a sealed checkpoint", "wksp index PATH [--threads N]",
     "Decodes the sealed checkpoint at PATH, checks it against its seal and writes\n"
     "PATH.wkspidx, which 'wksp checkpt --since PATH' reads instead of PATH.\n"},
    {"fold", cmd_fold, "write a chain of deltas as one full checkpoint",
     "wksp fold BASE DELTA... -o PATH|- [--style v2|v3] [--threads N] [--info TEXT] [--mode OCTAL]\n"
     "       [--force] [--index] [-q|-v] [--bytes]",
     "Writes the final state of the chain BASE DELTA... (a sealed checkpoint and its\n"
     "deltas, in order, all of it checked first as restore checks a chain) as one\n"
     "ordinary checkpoint at PATH (published atomically, sealed) or, with \"-\", to\n"
     "standard output (unsealed): the file a checkpoint of a workspace holding that\n"
     "state would be, but for its info frame, so other readers read it.  It\n"
     "records BASE's sizes and the name and seed of the last file's workspace.\n"
     "The style is BASE's unless --style says otherwise.  No workspace is needed:\n"
     "the state is built in private memory (about the allocated bytes).\n"},
    {"styles", cmd_styles, "list checkpoint styles", "wksp styles [--json]",
     "Lists the checkpoint styles this build reads and writes.\n"},
};

enum { CMD_CNT = sizeof commands / sizeof commands[0] };

static void print_overview(FILE *f) {
  fprintf(f,
          "usage: wksp [--version] [--help] COMMAND [ARGS]\n\n"
          "Named shared-memory workspaces and their checkpoints.\n\n"
          "Commands:\n");
  for (int i = 0; i < CMD_CNT; i++) fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
  fprintf(f,
          "\n`wksp COMMAND --help` or `wksp help COMMAND` describes a command.\n"
          "Exit status: 0 success, 1 failure, 2 usage error (diff: 1 they differ,\n"
          "3 failure).\n"
          "Environment: WKSP_SHMEM_DIR, the directory of named regions (default /dev/shm).\n");
}

static const cli_cmd_t *find(const char *name) {
  for (int i = 0; i < CMD_CNT; i++)
    if (!strcmp(commands[i].name, name)) return &commands[i];
  return NULL;
}

/* "unknown command "x"", with the command it is most likely a typo of. */
static int unknown_command(cli_t *c, const char *name) {
  const char *names[CMD_CNT + 1];
  for (int i = 0; i < CMD_CNT; i++) names[i] = commands[i].name;
  names[CMD_CNT] = "help";
  const char *near = cli_nearest(name, names, CMD_CNT + 1);
  if (near) return cli_usage_err(c, "unknown command \"%s\"; did you mean \"%s\"? (see 'wksp help')", name, near);
  return cli_usage_err(c, "unknown command \"%s\" (see 'wksp help')", name);
}

/* Runs cmd with argv; the command parses them (cli_parse). */
static int run(const cli_cmd_t *cmd, int argc, char **argv) {
  cli_t c = {.cmd = cmd, .argc = argc, .argv = argv};
  int rc = cmd->fn(&c);
  cli_free(&c);
  return rc;
}

static const cli_cmd_t help_cmd = {"help", NULL, "", "wksp help [COMMAND]", ""};

/* `wksp help CMD` is `wksp CMD --help`: the command prints its help from
 * its own option table. */
static int cmd_help(int argc, char **argv) {
  cli_t c = {.cmd = &help_cmd};
  if (argc > 1) return cli_usage_err(&c, "unexpected argument \"%s\" (usage: %s)", argv[1], help_cmd.usage);
  if (argc == 0) {
    print_overview(stdout);
    return cli_flush(&c, CLI_OK);
  }
  const cli_cmd_t *cmd = find(argv[0]);
  if (!cmd) return unknown_command(&c, argv[0]);
  static char help_arg[] = "--help";
  char *help_argv[] = {help_arg, NULL};
  return run(cmd, 1, help_argv);
}

int main(int argc, char **argv) {
  cli_t c = {.cmd = NULL};
  if (argc < 2) {
    print_overview(stderr);
    return CLI_USAGE;
  }
  const char *name = argv[1];
  if (!strcmp(name, "--version") || !strcmp(name, "-V")) {
    printf("wksp %s\n", WKSP_VERSION);
    return cli_flush(&c, CLI_OK);
  }
  if (!strcmp(name, "--help") || !strcmp(name, "-h")) {
    print_overview(stdout);
    return cli_flush(&c, CLI_OK);
  }
  if (!strcmp(name, "help")) return cmd_help(argc - 2, argv + 2);
  const cli_cmd_t *cmd = find(name);
  if (!cmd && name[0] == '-') return cli_usage_err(&c, "unknown option \"%s\" (see 'wksp help')", name);
  if (!cmd) return unknown_command(&c, name);
  return run(cmd, argc - 2, argv + 2);
}
