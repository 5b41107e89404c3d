/*
 * never_runs_fixed.c - never_runs.c fixed with a WaitGroup.
 *
 * In Go:
 *
 *     func say(s string, wg *sync.WaitGroup) {
 *         defer wg.Done()
 *         time.Sleep(100 * time.Millisecond)
 *         fmt.Println(s)
 *     }
 *     func main() {
 *         var wg sync.WaitGroup
 *         wg.Add(1)
 *         go say("hello from the goroutine", &wg)
 *         wg.Wait()
 *         fmt.Println("main: the goroutine has finished; returning")
 *     }
 *
 * Three rules make this correct:
 *   - wg_add before go_spawn, in the goroutine that will wait: if the
 *     goroutine did the add itself, main could reach wg_wait first, see a
 *     zero counter and return at once;
 *   - wg_done when the goroutine's work is over, here through go_defer so
 *     that it also runs if the goroutine ends early with go_exit;
 *   - wg_wait before returning from main.  main is a plain thread, not a
 *     goroutine: wg_wait blocks it until the counter is back to zero.
 */
#include <gort.h>
#include <stdio.h>

struct greeting {
    const char *text;
    wg_t *wg;
};

/* go_defer takes a void (*)(void *); wg_done takes a wg_t *. */
static void done(void *wg)
{
    wg_done(wg);
}

static void say(void *arg)
{
    struct greeting *g = arg;
    go_defer(done, g->wg); /* Go's `defer wg.Done()` */
    go_sleep(100 * GO_MS); /* the "work" */
    printf("%s\n", g->text);
}                          /* deferred calls run here, after the return */

int main(void)
{
    wg_t wg = WG_INIT;
    struct greeting g = {"hello from the goroutine", &wg};

    wg_add(&wg, 1);
    if (go_spawn(say, &g) != 0)
        return 1;
    wg_wait(&wg);
    printf("main: the goroutine has finished; returning\n");
    return 0;
}
