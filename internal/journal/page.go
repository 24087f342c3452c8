package journal

import (
	"time"
)

// page is what storage holds of a page: the entries of one batch that are
// not handed over yet. Earlier versions stored the same shape.
type page[E any] struct {
	Created time.Time    `json:"created"`
	Entries map[string]E `json:"entries"`
}
