// bench_boost: the Boost.Fiber 1.74 side of the libgo-rt benchmark suite.
// Every workload has a twin in ../gort/bench_gort.c and ../go/main.go with
// the same sizes and logic; each checks its own answer and exits non-zero
// when it is wrong.
//
//   bench_boost <workload> <workers> [scale]
//
// prints one line per result:  RESULT boost <workload> <workers> <value> <unit>
//
// One worker: Boost.Fiber's default round_robin scheduler on the main thread.
// More: algo::work_stealing on the main thread and on workers-1 extra
// std::threads, each of which parks its main fiber on a condition variable
// until the benchmark is over (the layout of Boost's own work_stealing
// example).  Fibers use Boost's default stack (fixedsize_stack, 128 KiB of
// address space from malloc; only the touched pages are resident).
//
// Boost.Fiber has no select and no network I/O: "select" is emulated the way
// a Boost user would write it (try_pop on each channel in random order, yield
// when neither is ready), and "echo" is not offered.
//
// "ctxswitch" is the raw Boost.Context switch: boost::context::fiber resumed
// in a loop, no scheduler involved.

#include <boost/context/fiber.hpp>
#include <boost/fiber/all.hpp>

#include <atomic>
#include <chrono>
#include <cinttypes>
#include <condition_variable>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <sys/resource.h>
#include <unistd.h>

namespace fibers = boost::fibers;
namespace ctx = boost::context;
using clk = std::chrono::steady_clock;

// Base sizes at scale 1; keep in step with main.go and bench_gort.c.
static const long kSpawn = 1000000;
static const long kYield = 5000000;      // per fiber
static const long kPingpong = 2000000;   // round trips
static const long kBuffered = 10000000;  // items
static const long kCap = 1024;           // buffered_channel(1024) holds 1023
static const long kFanout = 4000000;     // items
static const int kFanWorkers = 8;
static const long kSelect = 6000000;     // items, half from each producer
static const long kMutexPer = 4000000;   // locks per fiber
static const int kMutexFibers = 8;
static const long kSleep = 100000;
static const auto kSleepFor = std::chrono::milliseconds(10);
static const long kCtxSwitch = 20000000; // resumes (2 switches each)

static int g_workers = 1;
static double g_scale = 1.0;
static std::string g_workload;

static long size(long base) {
    long n = (long)((double)base * g_scale);
    return n < 1 ? 1 : n;
}

static void result(const char *name, double value, const char *unit) {
    std::printf("RESULT boost %s %d %.6g %s\n", name, g_workers, value, unit);
    std::fflush(stdout);
}

[[noreturn]] static void fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    std::fprintf(stderr, "FAIL boost %s %d: ", g_workload.c_str(), g_workers);
    std::vfprintf(stderr, fmt, ap);
    std::fputc('\n', stderr);
    va_end(ap);
    std::_Exit(1);
}

static double ns_since(clk::time_point t0) {
    return (double)std::chrono::duration_cast<std::chrono::nanoseconds>(clk::now() - t0).count();
}

// Boost.Fiber has no WaitGroup; this is the usual counter + fiber mutex +
// fiber condition variable, with a lock-free fast path for done().  Every
// WaitGroup here outlives the fibers that use it.
struct WaitGroup {
    std::atomic<long> n{0};
    fibers::mutex m;
    fibers::condition_variable cv;
    void add(long k) { n.fetch_add(k, std::memory_order_relaxed); }
    void done() {
        if (n.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            std::unique_lock<fibers::mutex> lk(m);
            cv.notify_all();
        }
    }
    void wait() {
        std::unique_lock<fibers::mutex> lk(m);
        cv.wait(lk, [this] { return n.load(std::memory_order_acquire) == 0; });
    }
};

template <class F> static void go(F &&f) { fibers::fiber(std::forward<F>(f)).detach(); }

// ---- spawn ---------------------------------------------------------------

static void bench_spawn() {
    long n = size(kSpawn);
    std::unique_ptr<unsigned char[]> done(new unsigned char[n]());
    auto *wg = new WaitGroup;
    auto t0 = clk::now();
    wg->add(n);
    for (long i = 0; i < n; i++) {
        unsigned char *p = &done[i];
        go([p, wg] {
            *p = 1;
            wg->done();
        });
    }
    wg->wait();
    double el = ns_since(t0);
    for (long i = 0; i < n; i++)
        if (done[i] != 1) fail("fiber %ld did not run", i);
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) fail("getrusage");
    result("spawn", el / n, "ns/goroutine");
    result("spawn_rss", (double)ru.ru_maxrss, "KiB");
}

// ---- yield ---------------------------------------------------------------

static void bench_yield() {
    long n = size(kYield);
    std::atomic<int> last{-1};
    long handoffs[2] = {0, 0}, counts[2] = {0, 0};
    auto *wg = new WaitGroup;
    auto t0 = clk::now();
    wg->add(2);
    for (int id = 0; id < 2; id++) {
        go([&, id, n, wg] {
            long h = 0, c = 0;
            for (long i = 0; i < n; i++) {
                if (last.load(std::memory_order_relaxed) != id) {
                    last.store(id, std::memory_order_relaxed);
                    h++;
                }
                c++;
                boost::this_fiber::yield();
            }
            handoffs[id] = h;
            counts[id] = c;
            wg->done();
        });
    }
    wg->wait();
    double el = ns_since(t0);
    if (counts[0] != n || counts[1] != n) fail("counts %ld %ld, want %ld", counts[0], counts[1], n);
    if (g_workers == 1 && n > 1 && handoffs[0] + handoffs[1] < n)
        fail("only %ld handoffs in %ld yields: yield does not switch", handoffs[0] + handoffs[1], 2 * n);
    result("yield", el / (2.0 * n), "ns/switch");
}

// ---- pingpong ------------------------------------------------------------

static void bench_pingpong() {
    long n = size(kPingpong);
    fibers::unbuffered_channel<long> ping, pong;
    auto *wg = new WaitGroup;
    long served = 0;
    wg->add(1);
    go([&, wg] {
        long v;
        while (ping.pop(v) == fibers::channel_op_status::success) {
            served++;
            pong.push(v + 1);
        }
        wg->done();
    });
    auto t0 = clk::now();
    for (long i = 0; i < n; i++) {
        ping.push(i);
        long v = -1;
        if (pong.pop(v) != fibers::channel_op_status::success || v != i + 1)
            fail("round trip %ld answered %ld", i, v);
    }
    double el = ns_since(t0);
    ping.close();
    wg->wait();
    if (served != n) fail("served %ld, want %ld", served, n);
    result("pingpong", el / n, "ns/roundtrip");
}

// ---- buffered ------------------------------------------------------------

static void bench_buffered() {
    long n = size(kBuffered);
    fibers::buffered_channel<long> ch(kCap);
    auto t0 = clk::now();
    go([&ch, n] {
        for (long i = 0; i < n; i++) ch.push(i);
        ch.close();
    });
    long sum = 0, cnt = 0, v;
    while (ch.pop(v) == fibers::channel_op_status::success) {
        sum += v;
        cnt++;
    }
    double el = ns_since(t0);
    if (cnt != n || sum != n * (n - 1) / 2) fail("got %ld items summing to %ld", cnt, sum);
    result("buffered", el / n, "ns/item");
}

// ---- fanout --------------------------------------------------------------

static void bench_fanout() {
    long n = size(kFanout);
    fibers::buffered_channel<long> jobs(kCap), results(kCap);
    auto *wg = new WaitGroup;
    auto t0 = clk::now();
    go([&jobs, n] {
        for (long i = 0; i < n; i++) jobs.push(i);
        jobs.close();
    });
    wg->add(kFanWorkers);
    for (int w = 0; w < kFanWorkers; w++) {
        go([&jobs, &results, wg] {
            long v;
            while (jobs.pop(v) == fibers::channel_op_status::success) results.push(2 * v + 1);
            wg->done();
        });
    }
    go([&results, wg] {
        wg->wait();
        results.close();
    });
    long sum = 0, cnt = 0, r;
    while (results.pop(r) == fibers::channel_op_status::success) {
        sum += r;
        cnt++;
    }
    double el = ns_since(t0);
    if (cnt != n || sum != n * n) fail("got %ld results summing to %ld", cnt, sum);
    result("fanout", el / n, "ns/item");
}

// ---- select (emulated: Boost.Fiber has no select) ------------------------

static void bench_select() {
    long half = size(kSelect / 2);
    fibers::buffered_channel<long> a(kCap), b(kCap);
    auto *wg = new WaitGroup;
    auto producer = [half, wg](fibers::buffered_channel<long> *c, long odd) {
        for (long i = 0; i < half; i++) c->push(2 * i + odd);
        c->close();
        wg->done();
    };
    auto t0 = clk::now();
    wg->add(2);
    go([&] { producer(&a, 0); });
    go([&] { producer(&b, 1); });
    fibers::buffered_channel<long> *ch[2] = {&a, &b};
    bool open[2] = {true, true};
    long sum[2] = {0, 0}, cnt[2] = {0, 0};
    uint64_t rng = 0x9E3779B97F4A7C15ull;
    while (open[0] || open[1]) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        int first = (int)(rng & 1);
        bool got = false;
        for (int k = 0; k < 2 && !got; k++) {
            int i = first ^ k;
            if (!open[i]) continue;
            long v;
            switch (ch[i]->try_pop(v)) {
            case fibers::channel_op_status::success:
                sum[i] += v;
                cnt[i]++;
                got = true;
                break;
            case fibers::channel_op_status::closed:
                open[i] = false;
                got = true;
                break;
            default:
                break;
            }
        }
        if (!got) boost::this_fiber::yield();
    }
    double el = ns_since(t0);
    wg->wait();
    if (cnt[0] != half || cnt[1] != half || sum[0] != half * (half - 1) || sum[1] != half * half)
        fail("a: %ld items sum %ld, b: %ld items sum %ld", cnt[0], sum[0], cnt[1], sum[1]);
    result("select", el / (2.0 * half), "ns/item");
}

// ---- mutex ---------------------------------------------------------------

static void bench_mutex() {
    long per = size(kMutexPer);
    fibers::mutex mu;
    long counter = 0;
    auto *wg = new WaitGroup;
    auto t0 = clk::now();
    wg->add(kMutexFibers);
    for (int g = 0; g < kMutexFibers; g++) {
        go([&mu, &counter, per, wg] {
            for (long i = 0; i < per; i++) {
                mu.lock();
                counter++;
                mu.unlock();
            }
            wg->done();
        });
    }
    wg->wait();
    double el = ns_since(t0);
    if (counter != kMutexFibers * per) fail("counter %ld, want %ld", counter, kMutexFibers * per);
    result("mutex", el / (kMutexFibers * per), "ns/lock");
}

// ---- parked --------------------------------------------------------------

static long rss_bytes() {
    FILE *f = std::fopen("/proc/self/statm", "r");
    long size_pages = 0, res_pages = 0;
    if (!f || std::fscanf(f, "%ld %ld", &size_pages, &res_pages) != 2) fail("statm");
    std::fclose(f);
    return res_pages * sysconf(_SC_PAGESIZE);
}

// Page-table memory of the process (VmPTE), which RSS does not include.
static long pte_bytes() {
    FILE *f = std::fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && std::fgets(line, sizeof line, f))
        if (std::sscanf(line, "VmPTE: %ld kB", &kb) == 1) break;
    if (f) std::fclose(f);
    if (kb < 0) fail("no VmPTE in /proc/self/status");
    return kb * 1024;
}

static void bench_parked(const char *name, long base) {
    long n = size(base);
    long before = rss_bytes(), pt_before = pte_bytes();
    auto *release = new fibers::unbuffered_channel<int>;
    auto *started = new WaitGroup, *exited = new WaitGroup;
    std::atomic<long> released{0};
    started->add(n);
    exited->add(n);
    for (long i = 0; i < n; i++) {
        go([=, &released] {
            started->done();
            int v;
            if (release->pop(v) == fibers::channel_op_status::closed)
                released.fetch_add(1, std::memory_order_relaxed);
            exited->done();
        });
    }
    started->wait();
    boost::this_fiber::sleep_for(std::chrono::milliseconds(20));
    long after = rss_bytes(), pt_after = pte_bytes();
    release->close();
    exited->wait();
    if (released.load() != n) fail("%ld of %ld fibers released", released.load(), n);
    result(name, (double)(after - before) / n, "B/goroutine");
    result((std::string(name) + "_pt").c_str(), (double)(pt_after - pt_before) / n, "B/goroutine");
}

// ---- sleep ---------------------------------------------------------------

static void bench_sleep() {
    long n = size(kSleep);
    auto *wg = new WaitGroup;
    std::atomic<long> early{0};
    auto t0 = clk::now();
    wg->add(n);
    for (long i = 0; i < n; i++) {
        go([wg, &early] {
            auto s = clk::now();
            boost::this_fiber::sleep_for(kSleepFor);
            if (clk::now() - s < kSleepFor) early.fetch_add(1, std::memory_order_relaxed);
            wg->done();
        });
    }
    wg->wait();
    double el = ns_since(t0);
    if (early.load() != 0) fail("%ld fibers woke early", early.load());
    result("sleep", el / 1e6, "ms");
}

// ---- ctxswitch: raw boost::context::fiber resume --------------------------

static void bench_ctxswitch() {
    long n = size(kCtxSwitch);
    long count = 0;
    ctx::fiber f{[&count](ctx::fiber &&sink) {
        for (;;) {
            count++;
            sink = std::move(sink).resume();
        }
        return std::move(sink);
    }};
    auto t0 = clk::now();
    for (long i = 0; i < n; i++) f = std::move(f).resume();
    double el = ns_since(t0);
    if (count != n) fail("fiber ran %ld times, want %ld", count, n);
    result("ctxswitch", el / (2.0 * n), "ns/switch");
    // f is destroyed here: Boost unwinds the suspended fiber.
}

// ---- threads and main ----------------------------------------------------

static bool g_done = false;
static std::mutex g_done_mtx;
static fibers::condition_variable_any g_done_cv;

static void worker_thread(uint32_t n) {
    fibers::use_scheduling_algorithm<fibers::algo::work_stealing>(n);
    std::unique_lock<std::mutex> lk(g_done_mtx);
    g_done_cv.wait(lk, [] { return g_done; });
}

int main(int argc, char **argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: bench_boost <workload> <workers> [scale]\n"
                             "workloads: spawn yield pingpong buffered fanout select mutex "
                             "parked100k parked1m sleep ctxswitch\n");
        return 2;
    }
    g_workload = argv[1];
    g_workers = std::atoi(argv[2]);
    if (g_workers < 1) {
        std::fprintf(stderr, "bench_boost: workers must be a positive integer\n");
        return 2;
    }
    if (argc > 3) {
        g_scale = std::strtod(argv[3], nullptr);
        if (!(g_scale > 0)) {
            std::fprintf(stderr, "bench_boost: scale must be a positive number\n");
            return 2;
        }
    }
    void (*body)() = nullptr;
    const std::string &w = g_workload;
    if (w == "spawn") body = bench_spawn;
    else if (w == "yield") body = bench_yield;
    else if (w == "pingpong") body = bench_pingpong;
    else if (w == "buffered") body = bench_buffered;
    else if (w == "fanout") body = bench_fanout;
    else if (w == "select") body = bench_select;
    else if (w == "mutex") body = bench_mutex;
    else if (w == "parked100k") body = [] { bench_parked("parked100k", 100000); };
    else if (w == "parked1m") body = [] { bench_parked("parked1m", 1000000); };
    else if (w == "sleep") body = bench_sleep;
    else if (w == "ctxswitch") {
        bench_ctxswitch();
        return 0;
    } else if (w == "echo") {
        std::fprintf(stderr, "bench_boost: Boost.Fiber has no network I/O; echo is not offered\n");
        return 3;
    } else {
        std::fprintf(stderr, "bench_boost: no workload \"%s\"\n", w.c_str());
        return 2;
    }

    std::vector<std::thread> threads;
    if (g_workers > 1) {
        // work_stealing's constructor waits on a barrier for all threads.
        for (int i = 1; i < g_workers; i++) threads.emplace_back(worker_thread, (uint32_t)g_workers);
        fibers::use_scheduling_algorithm<fibers::algo::work_stealing>((uint32_t)g_workers);
    }
    fibers::fiber(body).join();
    {
        std::unique_lock<std::mutex> lk(g_done_mtx);
        g_done = true;
    }
    g_done_cv.notify_all();
    for (auto &t : threads) t.join();
    return 0;
}
