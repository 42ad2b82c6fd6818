package main

import (
	"math"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3}
	cases := []struct {
		p, want float64
	}{
		{0, 1}, {50, 3}, {100, 5}, {25, 2}, {90, 4.6}, {-5, 1}, {150, 5},
	}
	for _, c := range cases {
		if got := Percentile(xs, c.p); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("Percentile(%v, %v) = %v, want %v", xs, c.p, got, c.want)
		}
	}
	if xs[0] != 5 {
		t.Errorf("Percentile sorted its input: %v", xs)
	}
	if !math.IsNaN(Percentile(nil, 50)) {
		t.Error("Percentile of nothing should be NaN")
	}
}

func TestMedianEven(t *testing.T) {
	if got := Median([]float64{1, 2, 3, 10}); got != 2.5 {
		t.Errorf("Median = %v, want 2.5", got)
	}
	if got := IntMedian([]int64{4, 1, 3, 2}); got != 3 { // 2.5 rounds to 3
		t.Errorf("IntMedian = %v, want 3", got)
	}
	if got := IntMedian(nil); got != 0 {
		t.Errorf("IntMedian(nil) = %v, want 0", got)
	}
}

func TestDurPercentile(t *testing.T) {
	ds := []time.Duration{30 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond}
	if got := DurMedian(ds); got != 20*time.Millisecond {
		t.Errorf("DurMedian = %v", got)
	}
	if got := DurPercentile(ds, 75); got != 25*time.Millisecond {
		t.Errorf("DurPercentile 75 = %v", got)
	}
	if got := DurPercentile(nil, 50); got != 0 {
		t.Errorf("DurPercentile(nil) = %v", got)
	}
}

func TestRatioAndFormat(t *testing.T) {
	if !math.IsNaN(Ratio(1, 0)) {
		t.Error("Ratio by zero should be NaN")
	}
	if got := fmtRatio(Ratio(3, 2)); got != "1.50x" {
		t.Errorf("fmtRatio = %q", got)
	}
	if got := fmtRatio(math.NaN()); got != "n/a" {
		t.Errorf("fmtRatio(NaN) = %q", got)
	}
	for d, want := range map[time.Duration]string{
		1500 * time.Microsecond:  "1.50 ms",
		12345 * time.Microsecond: "12.3 ms",
		345 * time.Millisecond:   "345 ms",
		12 * time.Second:         "12.00 s",
		800 * time.Microsecond:   "800 µs",
	} {
		if got := fmtDur(d); got != want {
			t.Errorf("fmtDur(%v) = %q, want %q", d, got, want)
		}
	}
	for b, want := range map[int64]string{
		512: "512 B", 1536: "1.5 KiB", 200 << 20: "200 MiB", 5 << 30: "5.0 GiB",
	} {
		if got := fmtBytes(b); got != want {
			t.Errorf("fmtBytes(%d) = %q, want %q", b, got, want)
		}
	}
}
