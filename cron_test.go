package beyondidentity

import (
	"testing"
	"time"
)

// A rotation_schedule's times.

// A schedule's shortest interval is the shortest gap between two of its
// times over a whole cycle of it, wherever in the cycle that gap falls.
func TestAScheduleShortestIntervalIsItsShortestGap(t *testing.T) {
	t.Parallel()
	december := time.Date(2030, time.December, 4, 1, 0, 0, 0, time.UTC)
	for schedule, tc := range map[string]struct {
		from time.Time
		want time.Duration
	}{
		// The 1st and 2nd of June: a day apart, then 364 days to the next.
		"0 0 1,2 6 *": {december, 24 * time.Hour},
		// Weekdays: a day apart but over the weekend, from a Friday.
		"0 2 * * 1-5": {friday0100, 24 * time.Hour},
		// Twice a day, 21 hours apart, then 3 hours to the next day's.
		"13 2,23 * * *": {december, 3 * time.Hour},
		// 28 and 29 February: a day apart only in a leap year, 2032.
		"0 0 28,29 2 *": {december, 24 * time.Hour},
		// February's first, or its Mondays: a day apart only in a year
		// whose 1 February is a Sunday (2032 is not; 2037 is).
		"0 0 1 2 1": {december, 24 * time.Hour},
		"@monthly":  {december, 28 * 24 * time.Hour},
		"@hourly":   {december, time.Hour},
	} {
		parsed, err := parseSchedule(schedule)
		if err != nil {
			t.Fatal(err)
		}
		if got := shortestInterval(parsed, tc.from); got != tc.want {
			t.Errorf("%q from %s: shortest interval %s, want %s", schedule, tc.from.Format(time.DateOnly), got, tc.want)
		}
	}
}
