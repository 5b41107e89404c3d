// Command bench_go is the Go 1.19 side of the libgo-rt benchmark suite
// (tests/bench/README in docs/performance.md).  Every workload here has a
// twin in ../gort/bench_gort.c and ../boost/bench_boost.cpp with the same
// sizes and logic; each checks its own answer and exits non-zero when wrong.
//
//	bench_go <workload> <workers> [scale]
//
// prints one line per result:  RESULT go <workload> <workers> <value> <unit>
package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

var (
	workers  int
	scale    float64
	workload string
)

// Base sizes at scale 1; keep in step with bench_gort.c and bench_boost.cpp.
const (
	nSpawn    = 1000000
	nYield    = 5000000  // per goroutine
	nPingpong = 2000000  // round trips
	nBuffered = 10000000 // items
	capBuf    = 1024
	nFanout   = 4000000 // items
	fanWorker = 8
	nSelect   = 6000000 // items, half from each producer
	nMutexPer = 4000000 // locks per goroutine
	mutexG    = 8
	nSleep    = 100000
	sleepFor  = 10 * time.Millisecond
)

// Network sizes at scale 1 (the connection counts do not scale).
const (
	echoMsg     = 64   // bytes per echo round trip
	echo32RT    = 2500 // round trips per connection, 32 connections
	echo100RT   = 2000 // round trips per connection, 100 connections
	echo1000RT  = 200  // round trips per connection, 1,000 connections
	nIdle       = 10000
	idleBatch   = 500 // connections made before waiting for their handlers
	idleBuf     = 64  // an idle handler's read buffer
	idleFdSlack = 64  // descriptors kept free besides 2 per connection
)

func size(base int) int {
	n := int(float64(base) * scale)
	if n < 1 {
		n = 1
	}
	return n
}

func result(name string, value float64, unit string) {
	fmt.Printf("RESULT go %s %d %.6g %s\n", name, workers, value, unit)
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "FAIL go %s %d: %s\n", workload, workers, fmt.Sprintf(format, args...))
	os.Exit(1)
}

func nsPer(d time.Duration, n int) float64 { return float64(d.Nanoseconds()) / float64(n) }

// ---- spawn: spawn+join of 1,000,000 goroutines ---------------------------

func benchSpawn() {
	n := size(nSpawn)
	done := make([]byte, n)
	var wg sync.WaitGroup
	start := time.Now()
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func(p *byte) {
			*p = 1
			wg.Done()
		}(&done[i])
	}
	wg.Wait()
	el := time.Since(start)
	for i := range done {
		if done[i] != 1 {
			fail("goroutine %d did not run", i)
		}
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		fail("getrusage: %v", err)
	}
	result("spawn", nsPer(el, n), "ns/goroutine")
	result("spawn_rss", float64(ru.Maxrss), "KiB")
}

// ---- yield: two goroutines calling Gosched ------------------------------

func benchYield() {
	n := size(nYield)
	var last int32 = -1
	var handoffs [2]int64
	var counts [2]int64
	var wg sync.WaitGroup
	start := time.Now()
	wg.Add(2)
	for id := int32(0); id < 2; id++ {
		go func(id int32) {
			var h, c int64
			for i := 0; i < n; i++ {
				if atomic.LoadInt32(&last) != id {
					atomic.StoreInt32(&last, id)
					h++
				}
				c++
				runtime.Gosched()
			}
			handoffs[id], counts[id] = h, c
			wg.Done()
		}(id)
	}
	wg.Wait()
	el := time.Since(start)
	if counts[0] != int64(n) || counts[1] != int64(n) {
		fail("counts %d %d, want %d", counts[0], counts[1], n)
	}
	// With one worker the two goroutines must alternate: a yield that does
	// not switch would be fast and wrong.
	if workers == 1 && n > 1 && handoffs[0]+handoffs[1] < int64(n) {
		fail("only %d handoffs in %d yields: yield does not switch", handoffs[0]+handoffs[1], 2*n)
	}
	result("yield", nsPer(el, 2*n), "ns/switch")
}

// ---- pingpong: unbuffered round trip -------------------------------------

func benchPingpong() {
	n := size(nPingpong)
	ping := make(chan int64)
	pong := make(chan int64)
	var wg sync.WaitGroup
	var served int64
	wg.Add(1)
	go func() {
		for v := range ping {
			served++
			pong <- v + 1
		}
		wg.Done()
	}()
	start := time.Now()
	for i := int64(0); i < int64(n); i++ {
		ping <- i
		if v := <-pong; v != i+1 {
			fail("round trip %d answered %d", i, v)
		}
	}
	el := time.Since(start)
	close(ping)
	wg.Wait()
	if served != int64(n) {
		fail("served %d, want %d", served, n)
	}
	result("pingpong", nsPer(el, n), "ns/roundtrip")
}

// ---- buffered: producer/consumer over capacity 1024 ----------------------

func benchBuffered() {
	n := size(nBuffered)
	ch := make(chan int64, capBuf)
	start := time.Now()
	go func() {
		for i := int64(0); i < int64(n); i++ {
			ch <- i
		}
		close(ch)
	}()
	var sum, cnt int64
	for v := range ch {
		sum += v
		cnt++
	}
	el := time.Since(start)
	if cnt != int64(n) || sum != int64(n)*int64(n-1)/2 {
		fail("got %d items summing to %d", cnt, sum)
	}
	result("buffered", nsPer(el, n), "ns/item")
}

// ---- fanout: 1 producer, 8 workers, 1 collector ---------------------------

func benchFanout() {
	n := size(nFanout)
	jobs := make(chan int64, capBuf)
	results := make(chan int64, capBuf)
	var wg sync.WaitGroup
	start := time.Now()
	go func() {
		for i := int64(0); i < int64(n); i++ {
			jobs <- i
		}
		close(jobs)
	}()
	wg.Add(fanWorker)
	for w := 0; w < fanWorker; w++ {
		go func() {
			for v := range jobs {
				results <- 2*v + 1
			}
			wg.Done()
		}()
	}
	go func() {
		wg.Wait()
		close(results)
	}()
	var sum, cnt int64
	for r := range results {
		sum += r
		cnt++
	}
	el := time.Since(start)
	if cnt != int64(n) || sum != int64(n)*int64(n) {
		fail("got %d results summing to %d", cnt, sum)
	}
	result("fanout", nsPer(el, n), "ns/item")
}

// ---- select: one consumer selecting over two fed channels -----------------

func benchSelect() {
	half := size(nSelect / 2)
	a := make(chan int64, capBuf)
	b := make(chan int64, capBuf)
	producer := func(c chan int64, odd int64) {
		for i := int64(0); i < int64(half); i++ {
			c <- 2*i + odd
		}
		close(c)
	}
	start := time.Now()
	go producer(a, 0)
	go producer(b, 1)
	var sumA, sumB, cntA, cntB int64
	ca, cb := a, b
	for ca != nil || cb != nil {
		select {
		case v, ok := <-ca:
			if !ok {
				ca = nil
				continue
			}
			sumA += v
			cntA++
		case v, ok := <-cb:
			if !ok {
				cb = nil
				continue
			}
			sumB += v
			cntB++
		}
	}
	el := time.Since(start)
	h := int64(half)
	if cntA != h || cntB != h || sumA != h*(h-1) || sumB != h*h {
		fail("a: %d items sum %d, b: %d items sum %d", cntA, sumA, cntB, sumB)
	}
	result("select", nsPer(el, 2*half), "ns/item")
}

// ---- mutex: 8 goroutines contending on one mutex --------------------------

func benchMutex() {
	per := size(nMutexPer)
	var mu sync.Mutex
	var counter int64
	var wg sync.WaitGroup
	start := time.Now()
	wg.Add(mutexG)
	for g := 0; g < mutexG; g++ {
		go func() {
			for i := 0; i < per; i++ {
				mu.Lock()
				counter++
				mu.Unlock()
			}
			wg.Done()
		}()
	}
	wg.Wait()
	el := time.Since(start)
	if counter != int64(mutexG*per) {
		fail("counter %d, want %d", counter, mutexG*per)
	}
	result("mutex", nsPer(el, mutexG*per), "ns/lock")
}

// ---- parked: resident bytes per goroutine blocked on a receive -------------

func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		fail("statm: %v", err)
	}
	f := bytes.Fields(b)
	pages, err := strconv.ParseInt(string(f[1]), 10, 64)
	if err != nil {
		fail("statm: %v", err)
	}
	return pages * int64(os.Getpagesize())
}

// pteBytes is the kernel's page-table memory for this process (VmPTE),
// which RSS does not include.
func pteBytes() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		fail("status: %v", err)
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if bytes.HasPrefix(line, []byte("VmPTE:")) {
			f := bytes.Fields(line)
			kb, err := strconv.ParseInt(string(f[1]), 10, 64)
			if err != nil {
				fail("VmPTE: %v", err)
			}
			return kb * 1024
		}
	}
	fail("no VmPTE in /proc/self/status")
	return 0
}

func benchParked(name string, base int) {
	n := size(base)
	runtime.GC()
	debug.FreeOSMemory()
	before, ptBefore := rssBytes(), pteBytes()
	release := make(chan struct{})
	var started, exited sync.WaitGroup
	var released int64
	started.Add(n)
	exited.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			started.Done()
			if _, ok := <-release; !ok {
				atomic.AddInt64(&released, 1)
			}
			exited.Done()
		}()
	}
	started.Wait()
	time.Sleep(20 * time.Millisecond) // let the last ones reach the receive
	after, ptAfter := rssBytes(), pteBytes()
	close(release)
	exited.Wait()
	if released != int64(n) {
		fail("%d of %d goroutines released", released, n)
	}
	result(name, float64(after-before)/float64(n), "B/goroutine")
	result(name+"_pt", float64(ptAfter-ptBefore)/float64(n), "B/goroutine")
}

// ---- sleep: 100,000 goroutines sleeping 10 ms ------------------------------

func benchSleep() {
	n := size(nSleep)
	var wg sync.WaitGroup
	var early int64
	start := time.Now()
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			t0 := time.Now()
			time.Sleep(sleepFor)
			if time.Since(t0) < sleepFor {
				atomic.AddInt64(&early, 1)
			}
			wg.Done()
		}()
	}
	wg.Wait()
	el := time.Since(start)
	if early != 0 {
		fail("%d goroutines woke early", early)
	}
	result("sleep", float64(el.Nanoseconds())/1e6, "ms")
}

// ---- echo: TCP echo over 127.0.0.1 ---------------------------------------

func fillMsg(buf []byte, conn, round int) {
	for i := range buf {
		buf[i] = byte(conn*31 + round*7 + i)
	}
}

// listenLoopback listens on 127.0.0.1 with a kernel-chosen port; net.Listen
// asks for a backlog of net.core.somaxconn, as bench_gort.c does.
func listenLoopback() net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail("listen: %v", err)
	}
	return ln
}

// acceptLoop accepts until ln is closed, one handler goroutine per
// connection, and tells done when it returns.
func acceptLoop(ln net.Listener, handler func(net.Conn), done *sync.WaitGroup) {
	done.Add(1)
	go func() {
		defer done.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go handler(c)
		}
	}()
}

// echoRound writes one message, reads its echo and compares.
func echoRound(c net.Conn, msg, got []byte, id, round int) bool {
	fillMsg(msg, id, round)
	if _, err := c.Write(msg); err != nil {
		return false
	}
	if _, err := io.ReadFull(c, got); err != nil {
		return false
	}
	return bytes.Equal(msg, got)
}

// cpuSeconds is the user plus system time of the whole process.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		fail("getrusage: %v", err)
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// benchEcho: conns clients, each doing roundsPerConn round trips (times the
// scale) against its own server goroutine, all started together once every
// connection is up; the figure is round trips per second over all, and (as
// <name>_cpu) the process's CPU time per round trip, which a loaded machine
// disturbs less than the wall clock.
func benchEcho(name string, conns, roundsPerConn int) {
	rounds := size(roundsPerConn)
	ln := listenLoopback()
	var acceptor, served sync.WaitGroup
	served.Add(conns)
	acceptLoop(ln, func(c net.Conn) {
		defer served.Done()
		buf := make([]byte, 4096)
		for {
			k, err := c.Read(buf)
			if k > 0 {
				if _, werr := c.Write(buf[:k]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		c.Close()
	}, &acceptor)
	addr := ln.Addr().String()
	var ready, done sync.WaitGroup
	var bad int64
	gate := make(chan struct{})
	ready.Add(conns)
	done.Add(conns)
	for id := 0; id < conns; id++ {
		go func(id int) {
			defer done.Done()
			c, err := net.Dial("tcp", addr)
			ready.Done()
			if err != nil {
				atomic.AddInt64(&bad, 1)
				return
			}
			defer c.Close()
			<-gate
			msg := make([]byte, echoMsg)
			got := make([]byte, echoMsg)
			for r := 0; r < rounds; r++ {
				if !echoRound(c, msg, got, id, r) {
					atomic.AddInt64(&bad, 1)
					return
				}
			}
		}(id)
	}
	ready.Wait()
	cpu0 := cpuSeconds()
	start := time.Now()
	close(gate)
	done.Wait()
	el := time.Since(start)
	cpu := cpuSeconds() - cpu0
	if bad != 0 {
		fail("%d connections failed", bad)
	}
	served.Wait() // every server goroutine saw its client's EOF
	ln.Close()
	acceptor.Wait()
	total := float64(conns * rounds)
	result(name, total/el.Seconds()/1000, "krt/s")
	result(name+"_cpu", cpu*1e6/total, "us/rt")
}

// ---- idleconn: resident bytes per idle TCP connection ----------------------

// N connections on 127.0.0.1, each with a server goroutine parked in Read
// (64-byte buffer); the client ends are plain blocking descriptors that no
// goroutine waits on (syscall.Socket/Connect, as bench_gort.c does with
// socket/connect), so the figure is the server side's: goroutine, net.Conn
// and poll descriptor, buffer.  Socket buffers are kernel memory and not in
// RSS.  Connections are made in batches that the backlog always holds, each
// batch waited for until its handlers run.  Afterwards every connection gets
// one byte, every server goroutine must echo it, and every one must see its
// client's EOF: a broken state cannot pass.  Page tables (VmPTE), which RSS
// does not count, go to idleconn_pt.

// idleConns says how many connections fit: both ends live in this process,
// so 2 per connection plus a margin.  Raises the soft RLIMIT_NOFILE to what
// is needed (up to the hard limit; past it too when privileged).
func idleConns(want int) int {
	need := uint64(2*want + idleFdSlack)
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		fail("getrlimit: %v", err)
	}
	if rl.Cur < need {
		up := syscall.Rlimit{Cur: need, Max: rl.Max}
		if rl.Max < need {
			up.Max = need
		}
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &up) != nil {
			up.Cur, up.Max = rl.Max, rl.Max
			_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &up)
		}
		if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			fail("getrlimit: %v", err)
		}
	}
	if rl.Cur >= need {
		return want
	}
	fit := (int(rl.Cur) - idleFdSlack) / 2
	if fit < 1 {
		fail("RLIMIT_NOFILE %d is too low", rl.Cur)
	}
	fmt.Fprintf(os.Stderr, "bench_go: idleconn: RLIMIT_NOFILE %d, %d connections instead of %d\n",
		rl.Cur, fit, want)
	return fit
}

func idleConnect(fds []int, from, to int, sa syscall.Sockaddr, up *sync.WaitGroup) {
	up.Add(to - from)
	for i := from; i < to; i++ {
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err == nil {
			fds[i] = fd
			err = syscall.Connect(fd, sa)
		}
		if err != nil {
			fail("connection %d: %v", i, err)
		}
	}
	up.Wait()
}

// idleCheck sends one byte to every connection, then reads every echo back
// and checks it.
func idleCheck(fds []int) {
	var b [1]byte
	for i, fd := range fds {
		b[0] = byte(i*7 + 1)
		if k, err := syscall.Write(fd, b[:]); k != 1 {
			fail("write to connection %d: %v", i, err)
		}
	}
	for i, fd := range fds {
		b[0] = 0
		k, err := syscall.Read(fd, b[:])
		for err == syscall.EINTR {
			k, err = syscall.Read(fd, b[:])
		}
		if k != 1 || b[0] != byte(i*7+1) {
			fail("connection %d echoed %d byte(s), 0x%02x (%v)", i, k, b[0], err)
		}
	}
}

func benchIdleConn() {
	n := idleConns(size(nIdle))
	fds := make([]int, n)
	ln := listenLoopback()
	port := ln.Addr().(*net.TCPAddr).Port
	var acceptor, up, down sync.WaitGroup
	var echoed int64
	down.Add(n)
	acceptLoop(ln, func(c net.Conn) {
		buf := make([]byte, idleBuf)
		up.Done()
		for {
			k, err := c.Read(buf)
			if k > 0 {
				if _, werr := c.Write(buf[:k]); werr != nil {
					break
				}
				atomic.AddInt64(&echoed, int64(k))
			}
			if err != nil {
				break
			}
		}
		c.Close()
		down.Done()
	}, &acceptor)
	sa := &syscall.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}
	time.Sleep(20 * time.Millisecond) // the acceptor is parked in Accept
	runtime.GC()
	debug.FreeOSMemory()
	before, ptBefore := rssBytes(), pteBytes()
	for i := 0; i < n; i += idleBatch {
		to := i + idleBatch
		if to > n {
			to = n
		}
		idleConnect(fds, i, to, sa, &up)
	}
	time.Sleep(20 * time.Millisecond) // let the last handlers reach their read
	after, ptAfter := rssBytes(), pteBytes()
	idleCheck(fds)
	for _, fd := range fds {
		syscall.Close(fd)
	}
	down.Wait()
	ln.Close()
	acceptor.Wait()
	if echoed != int64(n) {
		fail("server goroutines echoed %d bytes, want %d", echoed, n)
	}
	result("idleconn", float64(after-before)/float64(n), "B/conn")
	result("idleconn_pt", float64(ptAfter-ptBefore)/float64(n), "B/conn")
	result("idleconn_n", float64(n), "conns")
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: bench_go <workload> <workers> [scale]\n"+
			"workloads: spawn yield pingpong buffered fanout select mutex parked100k parked1m sleep echo echo100 echo1000 idleconn")
		os.Exit(2)
	}
	workload = os.Args[1]
	var err error
	if workers, err = strconv.Atoi(os.Args[2]); err != nil || workers < 1 {
		fmt.Fprintln(os.Stderr, "bench_go: workers must be a positive integer")
		os.Exit(2)
	}
	scale = 1
	if len(os.Args) > 3 {
		if scale, err = strconv.ParseFloat(os.Args[3], 64); err != nil || scale <= 0 {
			fmt.Fprintln(os.Stderr, "bench_go: scale must be a positive number")
			os.Exit(2)
		}
	}
	runtime.GOMAXPROCS(workers)
	switch workload {
	case "spawn":
		benchSpawn()
	case "yield":
		benchYield()
	case "pingpong":
		benchPingpong()
	case "buffered":
		benchBuffered()
	case "fanout":
		benchFanout()
	case "select":
		benchSelect()
	case "mutex":
		benchMutex()
	case "parked100k":
		benchParked("parked100k", 100000)
	case "parked1m":
		benchParked("parked1m", 1000000)
	case "sleep":
		benchSleep()
	case "echo":
		benchEcho("echo", 32, echo32RT)
	case "echo100":
		benchEcho("echo100", 100, echo100RT)
	case "echo1000":
		benchEcho("echo1000", 1000, echo1000RT)
	case "idleconn":
		benchIdleConn()
	default:
		fmt.Fprintf(os.Stderr, "bench_go: no workload %q\n", workload)
		os.Exit(2)
	}
}
