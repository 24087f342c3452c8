package biclient

import (
	"fmt"
	"sort"
	"strings"
)

// regionAuthURLs maps each Beyond Identity region to the base URL of its auth host.
var regionAuthURLs = map[string]string{
	"us":         "https://auth-us.beyondidentity.com",
	"eu":         "https://auth-eu.beyondidentity.com",
	"us-fedramp": "https://auth.us1.beyondidentity-gov.com",
}

// DefaultRegion is the region used when none is configured.
const DefaultRegion = "us"

// Regions lists the known region names, sorted.
func Regions() []string {
	names := make([]string, 0, len(regionAuthURLs))
	for name := range regionAuthURLs {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// AuthURLForRegion returns the auth host of a region.
func AuthURLForRegion(region string) (string, error) {
	url, ok := regionAuthURLs[region]
	if !ok {
		return "", fmt.Errorf("unknown region %q: must be one of %s", region, strings.Join(Regions(), ", "))
	}
	return url, nil
}
