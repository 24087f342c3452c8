package main

import (
	"bufio"
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/hashicorp/vault/api"
)

// journalStats is what the plugin's metrics say of the journal that covers
// fresh tokens: how many storage commits it made (pages written and
// deleted) and how many tokens it covered. Their ratio shows how well
// concurrent credentials share commits. (Tokens let go of are not counted:
// a page written over lets go of its old tokens in the commit that covers
// new ones.)
type journalStats struct {
	commits, tokens float64
	err             error
}

func (s journalStats) String() string {
	switch {
	case s.err != nil:
		return "? (" + s.err.Error() + ")"
	case s.commits == 0:
		return "-"
	}
	return fmt.Sprintf("%.1f (%.0f tokens covered, %.0f commits)", s.tokens/s.commits, s.tokens, s.commits)
}

// readJournalStats reads the mount's metrics and sums the journal's
// counters over their op label. It asks for the Prometheus text
// exposition: the path answers JSON by default, in which no line is a
// series, and the column would say "-" of a journal that did commit.
func readJournalStats(ctx context.Context, client *api.Client) journalStats {
	resp, err := client.Logical().ReadRawWithDataWithContext(ctx, mount+"/metrics",
		map[string][]string{"format": {"prometheus"}})
	if err != nil {
		return journalStats{err: err}
	}
	defer resp.Body.Close()
	var s journalStats
	lines := bufio.NewScanner(resp.Body)
	for lines.Scan() {
		s.add(lines.Text())
	}
	if err := lines.Err(); err != nil {
		return journalStats{err: err}
	}
	return s
}

// add counts one line of the text exposition, if it is a journal series.
func (s *journalStats) add(line string) {
	name, rest, ok := strings.Cut(line, "{")
	if !ok {
		return
	}
	labels, number, ok := strings.Cut(rest, "} ")
	value, err := strconv.ParseFloat(strings.TrimSpace(number), 64)
	if !ok || err != nil {
		return
	}
	switch name {
	case "beyondidentity_journal_commits_total":
		s.commits += value
	case "beyondidentity_journal_tokens_total":
		if labels == `op="cover"` {
			s.tokens += value
		}
	}
}
