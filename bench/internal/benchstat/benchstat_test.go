package benchstat

import (
	"testing"
	"time"
)

func TestMedianAndPercentile(t *testing.T) {
	if got := Median([]float64{3, 1, 2}); got != 2 {
		t.Errorf("Median odd = %v", got)
	}
	if got := Median([]float64{4, 1, 2, 3}); got != 2.5 {
		t.Errorf("Median even = %v", got)
	}
	d := []time.Duration{5, 1, 4, 2, 3, 6, 7, 8, 9, 10}
	if got := Percentile(d, 50); got != 5 {
		t.Errorf("p50 = %v", got)
	}
	if got := Percentile(d, 99); got != 10 {
		t.Errorf("p99 = %v", got)
	}
	if d[0] != 5 || Median(nil) != 0 || Percentile(nil, 50) != 0 {
		t.Error("input modified or empty input not 0")
	}
}
