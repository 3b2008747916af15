/* The seal of a checkpoint written with verify (docs/FORMAT.md 9.1: the format
 * has no checksums; docs/FORMAT.md 12 has the design and the reasons): its
 * placeholders, their patch with the digest, reading and judging it.
 *
 * A checkpoint written with verify is read back and compared with the
 * workspace before it is published; that pass also computes a digest of
 * the allocations it decoded and seals the file with it, in the info frame
 * (the only frame whose bytes are ours to choose), in three places:
 *
 *   - the info's app id (a number the reference shows but never checks)
 *     holds the seal mark CHECKPT_SEAL_MARK ("WKSPSEAL" on disk);
 *   - the build info's first line and its last line are both
 *
 *         content digest xxh3-sum64 <16 hex digits>
 *
 * Each place alone shows that the file is sealed, and each still does with
 * up to CHECKPT_SEAL_NEAR flipped bits in its fixed part (the mark, the text
 * before the digits): so no one or two flipped bits can make a sealed file
 * look unsealed.  The seal holds only when all three are exact and the two
 * digests agree; any other sign of a seal is a broken seal.  Files sealed
 * before the mark existed carry only the last line (the "line-only" seal),
 * and are still read as sealed.
 *
 * Readers that know nothing of it (the reference) show it as text and a
 * number.  A restore of a sealed checkpoint checks it and treats a broken
 * seal or a content mismatch as damaged data (CORRUPT).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "checkpt_private.h"
#include "util/err.h"
#include "util/io.h"

static const char digest_tag[] = "content digest xxh3-sum64 ";

size_t wksp_private_checkpt_digest_line(char *out, size_t cap, uint64_t d) {
  int n = snprintf(out, cap, "%s%016" PRIx64 "\n", digest_tag, d);
  return n < 0 ? 0 : (size_t)n;
}

size_t wksp_private_checkpt_digest_hex_at(void) { return sizeof digest_tag - 1; }

size_t wksp_private_checkpt_digest_line_sz(void) { return sizeof digest_tag - 1 + 16 + 1; }

/* 1 and *d when p (line_sz bytes) is exactly a digest line. */
static int line_parse(const char *p, uint64_t *d) {
  size_t n = wksp_private_checkpt_digest_line_sz();
  if (memcmp(p, digest_tag, sizeof digest_tag - 1) || p[n - 1] != '\n') return 0;
  uint64_t v = 0;
  for (const char *h = p + sizeof digest_tag - 1; h < p + n - 1; h++) {
    int x = *h >= '0' && *h <= '9' ? *h - '0' : *h >= 'a' && *h <= 'f' ? *h - 'a' + 10 : -1;
    if (x < 0) return 0;
    v = v << 4 | (uint64_t)x;
  }
  *d = v;
  return 1;
}

/* Whether p (line_sz bytes) shows a digest line: its text within
 * CHECKPT_SEAL_NEAR bits of the tag's. */
static int line_near(const char *p) {
  unsigned apart = 0;
  for (size_t i = 0; i < sizeof digest_tag - 1; i++)
    apart += (unsigned)__builtin_popcount((unsigned char)(p[i] ^ digest_tag[i]));
  return apart <= CHECKPT_SEAL_NEAR;
}

int wksp_private_checkpt_digest_parse(const char *binfo, size_t len, uint64_t *d) {
  size_t n = wksp_private_checkpt_digest_line_sz();
  if (len < n) return 0;
  const char *p = binfo + len - n;
  return (p == binfo || p[-1] == '\n') && line_parse(p, d);
}

/* The seal of an info (app id, build info of len bytes), as three places
 * show it (see the top of this file). */
void wksp_private_checkpt_seal_read(checkpt_seal_t *s, uint64_t app_id, const char *binfo, size_t len) {
  size_t n = wksp_private_checkpt_digest_line_sz();
  uint64_t first = 0, last = 0;
  int mark_near = __builtin_popcountll(app_id ^ CHECKPT_SEAL_MARK) <= CHECKPT_SEAL_NEAR;
  int first_near = len >= n && line_near(binfo), last_near = len >= n && line_near(binfo + len - n);
  int first_ok = len >= 2 * n && line_parse(binfo, &first);
  int last_ok = wksp_private_checkpt_digest_parse(binfo, len, &last);
  *s = (checkpt_seal_t){.state = WKSP_SEAL_NONE};
  if (!mark_near && !first_near && !last_near) return;
  s->state = WKSP_SEAL_BROKEN;
  if (!mark_near && !first_near && last_ok) {
    s->state = WKSP_SEAL_OK; /* line-only seal */
    s->digest = last;
  } else if (app_id != CHECKPT_SEAL_MARK) {
    snprintf(s->why, sizeof s->why, "the seal mark (the info's app id) is %016" PRIx64 ", not %016" PRIx64,
             app_id, (uint64_t)CHECKPT_SEAL_MARK);
  } else if (!first_ok || !last_ok) {
    snprintf(s->why, sizeof s->why, "the build info's %s line is not a digest line",
             first_ok ? "last" : "first");
  } else if (first != last) {
    snprintf(s->why, sizeof s->why, "the build info's two digests differ: %016" PRIx64 " and %016" PRIx64,
             first, last);
  } else {
    s->state = WKSP_SEAL_OK;
    s->digest = first;
  }
}

int wksp_private_checkpt_seal_gate(const checkpt_seal_t *s, int require, const char *what) {
  if (s->state == WKSP_SEAL_BROKEN)
    return wksp_err(WKSP_ERR_CORRUPT, 0,
                    "%s: broken seal: %s (the file was damaged after it was written)", what,
                    s->why);
  if (require && s->state == WKSP_SEAL_NONE)
    return wksp_err(WKSP_ERR_UNSUP, 0,
                    "%s: not sealed (written without verify), and a seal is required", what);
  return WKSP_SUCCESS;
}

size_t wksp_private_checkpt_seal_binfo(char *out, size_t cap, const char *body, int seal,
                                      uint64_t hex_at[2]) {
  size_t n = seal ? wksp_private_checkpt_digest_line(out, cap, 0) : 0;
  int m = snprintf(out + n, cap - n, "%s", body);
  n += m < 0 ? 0 : (size_t)m;
  hex_at[0] = seal ? wksp_private_checkpt_digest_hex_at() : 0;
  hex_at[1] = seal ? n + wksp_private_checkpt_digest_hex_at() : 0;
  if (seal) n += wksp_private_checkpt_digest_line(out + n, cap - n, 0);
  return n;
}

int wksp_private_checkpt_seal_patch(int fd, const uint64_t off[2], uint64_t digest,
                                    const char *label) {
  char line[64];
  wksp_private_checkpt_digest_line(line, sizeof line, digest);
  int e = 0;
  for (int k = 0; k < 2 && !e; k++) {
    struct iovec hex = {line + wksp_private_checkpt_digest_hex_at(), 16}; /* consumed by the write */
    e = lseek(fd, (off_t)off[k], SEEK_SET) < 0 ? errno : wksp_private_writev_all(fd, &hex, 1);
  }
  return e ? wksp_err(WKSP_ERR_FAIL, e, "checkpt %s: writing the content digest", label)
           : WKSP_SUCCESS;
}

int wksp_private_checkpt_seal_mismatch(const char *what, uint64_t want, uint64_t got) {
  return wksp_err(WKSP_ERR_CORRUPT, 0,
                  "%s: content digest %016" PRIx64 ", the checkpoint records %016" PRIx64 ": the file was "
                  "damaged after it was written (its allocations, or the recorded digest)",
                  what, got, want);
}
