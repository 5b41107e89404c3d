/*
 * never_runs.c - Go's classic first goroutine bug, in C: main returns
 * before the goroutine has done its work, and the program ends with it.
 *
 * In Go:
 *
 *     func say(s string) {
 *         time.Sleep(100 * time.Millisecond)
 *         fmt.Println(s)
 *     }
 *     func main() {
 *         go say("hello from the goroutine")
 *         fmt.Println("main: returning")
 *     }                                      // prints only "main: returning"
 *
 * go_spawn only creates the goroutine and makes it runnable; it does not
 * wait for it to run, let alone to finish.  Returning from main calls
 * exit(), which ends the whole process, however many goroutines are still
 * runnable, running or blocked (API.md: "Returning from main ends the
 * program, whatever goroutines are still running").
 *
 * Whether the goroutine gets a moment on a worker thread before the
 * process ends is a race: its first instructions may or may not run.  say()
 * therefore does what real goroutines do, some work first (here a 100 ms
 * sleep), so that the output is the same on every run: the goroutine never
 * gets to print.  never_runs_fixed.c waits for it with a WaitGroup.
 */
#include <gort.h>
#include <stdio.h>

static void say(void *arg)
{
    go_sleep(100 * GO_MS); /* the "work" */
    printf("%s\n", (const char *)arg);
}

int main(void)
{
    go_spawn(say, "hello from the goroutine");
    printf("main: %zu goroutine still running; returning anyway\n",
           go_num_goroutines());
    return 0; /* ends the process: "hello from the goroutine" never appears */
}
