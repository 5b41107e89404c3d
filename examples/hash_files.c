/*
 * hash_files.c - a concurrent file hasher, like sha256sum.
 *
 *   hash_files [-j WORKERS] FILE...
 *
 * A pool of WORKERS goroutines (default 8) takes file indexes from a
 * channel, reads each file with plain blocking read(2) and computes its
 * SHA-256.  read() on a regular file is a system call the runtime cannot
 * see; while one goroutine is stuck in it (a cold disk, a network file
 * system), the monitor hands the other goroutines of that worker to
 * another thread, so the pool keeps going: no special I/O call needed.
 *
 * Prints "<hex>  <path>" per file in argument order, as sha256sum does;
 * a file that cannot be read is reported on stderr and makes the exit
 * status 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gort.h>

/* ---- SHA-256 (FIPS 180-4) ----------------------------------------------- */

struct sha256 {
    uint32_t h[8];
    uint64_t len; /* bytes hashed so far */
    unsigned char block[64];
    size_t fill;
};

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(uint32_t h[8], const unsigned char *p)
{
    uint32_t w[64], a, b, c, d, e, f, g, hh;
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = hh + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
        uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        hh = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += hh;
}

static void sha256_init(struct sha256 *s)
{
    static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(s->h, h0, sizeof h0);
    s->len = 0;
    s->fill = 0;
}

static void sha256_update(struct sha256 *s, const unsigned char *p, size_t n)
{
    s->len += n;
    if (s->fill) {
        size_t take = 64 - s->fill < n ? 64 - s->fill : n;
        memcpy(s->block + s->fill, p, take);
        s->fill += take, p += take, n -= take;
        if (s->fill < 64)
            return;
        sha256_block(s->h, s->block);
        s->fill = 0;
    }
    for (; n >= 64; p += 64, n -= 64)
        sha256_block(s->h, p);
    memcpy(s->block, p, n);
    s->fill = n;
}

static void sha256_final(struct sha256 *s, char hex[65])
{
    uint64_t bits = s->len * 8;
    unsigned char pad[72] = {0x80};
    size_t padlen = (s->fill < 56 ? 56 : 120) - s->fill;
    for (int i = 0; i < 8; i++)
        pad[padlen + (size_t)i] = (unsigned char)(bits >> (56 - 8 * i));
    sha256_update(s, pad, padlen + 8);
    for (int i = 0; i < 8; i++)
        snprintf(hex + 8 * i, 9, "%08x", s->h[i]);
}

/* ---- the pool ------------------------------------------------------------- */

struct job {
    const char *path;
    char hex[65];
    int err; /* 0 or an errno value */
};

static struct job *jobs;
static chan_t *work; /* job indexes; closed when all are queued */
static wg_t workers_wg = WG_INIT;

/* Plain open/read/close: blocking system calls that the runtime does not
   see.  errno is read right after the call that set it, before anything
   could switch this goroutine to another thread. */
static int hash_file(const char *path, char hex[65], unsigned char *buf, size_t bufsize)
{
    struct sha256 s;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    sha256_init(&s);
    for (;;) {
        ssize_t n = read(fd, buf, bufsize);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int err = errno;
            close(fd);
            return err;
        }
        if (n == 0)
            break;
        sha256_update(&s, buf, (size_t)n);
    }
    close(fd);
    sha256_final(&s, hex);
    return 0;
}

static void worker(void *arg)
{
    size_t bufsize = 64 * 1024;
    unsigned char *buf = malloc(bufsize);
    int i;
    while (chan_recv(work, &i)) {
        jobs[i].err = buf ? hash_file(jobs[i].path, jobs[i].hex, buf, bufsize) : ENOMEM;
    }
    free(buf);
    wg_done(&workers_wg);
}

static _Noreturn void usage(void)
{
    fprintf(stderr, "usage: hash_files [-j WORKERS] FILE...\n");
    exit(2);
}

int main(int argc, char **argv)
{
    long nworkers = 8;
    int first = 1, status = 0, nfiles;
    if (argc > 2 && strcmp(argv[1], "-j") == 0) {
        char *end;
        nworkers = strtol(argv[2], &end, 10);
        if (*end || nworkers < 1 || nworkers > 10000)
            usage();
        first = 3;
    }
    nfiles = argc - first;
    if (nfiles < 1)
        usage();
    jobs = calloc((size_t)nfiles, sizeof *jobs);
    work = chan_make(sizeof(int), 64);
    if (!jobs || !work) {
        fprintf(stderr, "hash_files: out of memory\n");
        return 1;
    }
    if (nworkers > nfiles)
        nworkers = nfiles;
    wg_add(&workers_wg, nworkers);
    for (long w = 0; w < nworkers; w++) {
        if (go_spawn(worker, NULL) != 0) {
            fprintf(stderr, "hash_files: cannot start a worker\n");
            return 1;
        }
    }
    for (int i = 0; i < nfiles; i++) {
        jobs[i].path = argv[first + i];
        chan_send(work, &i);
    }
    chan_close(work);
    wg_wait(&workers_wg);
    chan_free(work);
    for (int i = 0; i < nfiles; i++) {
        if (jobs[i].err) {
            fprintf(stderr, "hash_files: %s: %s\n", jobs[i].path, strerror(jobs[i].err));
            status = 1;
            continue;
        }
        printf("%s  %s\n", jobs[i].hex, jobs[i].path);
    }
    free(jobs);
    return status;
}
