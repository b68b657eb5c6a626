package uptodate

import (
	"encoding/json"
	"maps"
	"slices"

	"github.com/kneepipe/kneepipe/runner/cache"
)

// canonical encodes parameter values with sorted keys.
func canonical(v map[string]any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // parameter values are plain strings, numbers, lists and maps
	}
	return string(b)
}

// normalize makes a value read back from JSON comparable with a decoded one.
func normalize(v any) any {
	b, _ := json.Marshal(v)
	var out any
	_ = json.Unmarshal(b, &out)
	return out
}

// ContentKey extends a volatile stage's key with digests of what it read.
func ContentKey(base cache.Key, digests map[string]string) cache.Key {
	var h cache.Hasher
	h.Add("base", string(base))
	for _, name := range slices.Sorted(maps.Keys(digests)) {
		h.Add("content:"+name, digests[name])
	}
	return h.Key()
}
