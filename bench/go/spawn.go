// Spawn+complete of N no-op goroutines, the Go side of bench/native/spawn.cpp.
// Usage: go run bench/go/spawn.go [-n 1000000] [-reps 5] [-json]
// Two shapes, like the C++ bench: spawned from the main goroutine ("external") and from inside
// one goroutine that spawns all the others ("inside"); completion through a sync.WaitGroup.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"sort"
	"sync"
	"time"
)

func measure(n int, reps int, body func(n int)) (median, best float64) {
	var xs []float64
	body(n / 10) // warm-up
	for r := 0; r < reps; r++ {
		t0 := time.Now()
		body(n)
		xs = append(xs, float64(time.Since(t0).Nanoseconds())/float64(n))
	}
	sort.Float64s(xs)
	return xs[len(xs)/2], xs[0]
}

func external(n int) {
	var wg sync.WaitGroup
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func() { wg.Done() }()
	}
	wg.Wait()
}

func inside(n int) {
	var wg sync.WaitGroup
	wg.Add(n)
	done := make(chan struct{})
	go func() {
		for i := 0; i < n; i++ {
			go func() { wg.Done() }()
		}
		close(done)
	}()
	<-done
	wg.Wait()
}

func main() {
	n := flag.Int("n", 1000000, "tasks per measurement")
	reps := flag.Int("reps", 5, "repetitions (median reported)")
	asJSON := flag.Bool("json", false, "print JSON")
	flag.Parse()
	extMed, extBest := measure(*n, *reps, external)
	inMed, inBest := measure(*n, *reps, inside)
	res := map[string]interface{}{
		"go_version":  runtime.Version(),
		"gomaxprocs":  runtime.GOMAXPROCS(0),
		"tasks":       *n,
		"external_ns_per_task": extMed, "external_best_ns_per_task": extBest,
		"inside_ns_per_task": inMed, "inside_best_ns_per_task": inBest,
	}
	if *asJSON {
		json.NewEncoder(os.Stdout).Encode(res)
		return
	}
	fmt.Printf("go %s GOMAXPROCS=%d: external %.1f ns/task (best %.1f), inside %.1f ns/task (best %.1f)\n",
		runtime.Version(), runtime.GOMAXPROCS(0), extMed, extBest, inMed, inBest)
}
