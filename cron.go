package beyondidentity

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/biclient"
)

// A static role's rotation_schedule: a cron expression, read in UTC, and
// the shortest interval between two of its times, which bounds the role's
// window and sets its default grace (static_role.go).

// parseSchedule parses a standard five-field cron expression, or one of
// the standard descriptors (@monthly, @weekly, @daily, @hourly and their
// aliases; @yearly parses, and the timing bound then refuses it), in UTC: a
// time zone of its own is refused, so that every node agrees on the times,
// and so is @every, which is a period.
func parseSchedule(expression string) (cron.Schedule, error) {
	trimmed := strings.TrimSpace(expression)
	switch {
	case strings.HasPrefix(trimmed, "TZ=") || strings.HasPrefix(trimmed, "CRON_TZ="):
		return nil, errors.New("runs in UTC: remove the time zone")
	case strings.HasPrefix(trimmed, "@every"):
		return nil, fmt.Errorf("takes calendar times, not @every: for a token replaced every %s, write "+
			"rotation_period=%s instead", biclient.CleanText(strings.TrimSpace(strings.TrimPrefix(trimmed, "@every")), 32),
			biclient.CleanText(strings.TrimSpace(strings.TrimPrefix(trimmed, "@every")), 32))
	}
	schedule, err := cron.ParseStandard(trimmed)
	if err != nil {
		return nil, fmt.Errorf("must be a standard five-field cron expression (minute hour day-of-month month "+
			"day-of-week, in UTC), such as \"0 2 * * 1-5\", or one of @monthly, @weekly, @daily, @hourly: %w", err)
	}
	return schedule, nil
}

// scheduleCycle is how far ahead a schedule's times must be looked at to
// see every gap between two of them: its times repeat yearly; a schedule
// that names 29 February, only every four years; one that names days of
// the week, only when the calendar's weekdays repeat, every 28 years.
func scheduleCycle(schedule cron.Schedule) time.Duration {
	const year = 365 * 24 * time.Hour
	spec, ok := schedule.(*cron.SpecSchedule)
	switch {
	case !ok:
		return year
	case spec.Dow&cronStarBit == 0:
		return 28 * year
	case spec.Month&(1<<uint(time.February)) != 0 && spec.Dom&(1<<29) != 0:
		return 4 * year
	}
	return year
}

// cronStarBit marks a cron field written as "*" (robfig/cron's starBit):
// a day-of-week field without it names particular days.
const cronStarBit = 1 << 63

// shortestInterval is the shortest time between two times of schedule
// over a whole cycle of it from from (scheduleCycle): the bound of
// rotation_window, and the base of the default grace. Zero when the
// schedule has no time at all (30 February). Every day the schedule names
// has the same times of day, so it looks at the gaps within one such day,
// and then at each day's gap to the next: a few thousand steps, even over
// 28 years.
func shortestInterval(schedule cron.Schedule, from time.Time) time.Duration {
	first := schedule.Next(from.UTC())
	if first.IsZero() {
		return 0
	}
	day := first.Truncate(24 * time.Hour)
	withinDay, lastOfDay := timesOfDay(schedule, day)
	cycle := scheduleCycle(schedule)
	shortest := time.Duration(math.MaxInt64)
	if withinDay > 0 {
		shortest = withinDay
	}
	// A cron schedule's times are whole minutes apart: none is shorter.
	for end := first.Add(cycle); day.Before(end) && shortest > time.Minute; {
		next := schedule.Next(day.Add(24*time.Hour - time.Second)) // the first time of the next day it names
		if next.IsZero() {
			// No time within the five years robfig/cron looks ahead
			// (29 February around 2100): longer than any token lives.
			return min(shortest, cycle)
		}
		shortest = min(shortest, next.Sub(day.Add(lastOfDay)))
		day = next.Truncate(24 * time.Hour)
	}
	return shortest
}

// timesOfDay looks at the times of schedule on day, a day it names: the
// shortest gap between two of them (zero when it names one time a day),
// and the last of them, from the day's start.
func timesOfDay(schedule cron.Schedule, day time.Time) (shortest, last time.Duration) {
	at := schedule.Next(day.Add(-time.Second))
	for next := schedule.Next(at); !next.IsZero() && next.Before(day.Add(24*time.Hour)); next = schedule.Next(at) {
		if gap := next.Sub(at); shortest == 0 || gap < shortest {
			shortest = gap
		}
		at = next
	}
	return shortest, at.Sub(day)
}
