package export

import (
	"archive/tar"
	"context"
	"fmt"
	"strconv"
	"time"
)

// tarEpoch is every member's modification time: a fixed date keeps the
// shards byte-identical from run to run.
var tarEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// wdsSample is one sample's members, sorted by extension: the files of a
// sample are adjacent and in a fixed order (.cls, .json, .png).
type wdsSample struct {
	cls, json []byte
}

// tarSize is the bytes a member of n bytes takes in a tar: a 512-byte
// header and the content padded to 512 (keys fit a ustar header).
func tarSize(n int64) int64 { return 512 + (n+511)/512*512 }

// WriteWebDataset writes s as webdataset/<split>-NNNNNN.tar shards. A
// sample is <key>.cls (the label as decimal text), <key>.json (the row)
// and <key>.png (the original bytes). A shard holds at most
// MaxShardSamples samples and MaxShardBytes bytes of tar, headers and the
// end-of-archive blocks included; a sample larger than that alone.
func WriteWebDataset(ctx context.Context, sink Sink, s *Split, opt Options) ([]string, error) {
	if err := s.check(opt); err != nil {
		return nil, err
	}
	n := int(s.Rows.NumRows())
	samples := make([]wdsSample, n)
	for i := range n {
		js, err := rowJSON(s.Rows, i)
		if err != nil {
			return nil, fmt.Errorf("split %s: row %d: %w", s.Name, i+1, err)
		}
		samples[i] = wdsSample{cls: []byte(strconv.FormatInt(s.Labels[i], 10)), json: js}
	}
	size := func(i int) int64 {
		return tarSize(int64(len(samples[i].cls))) + tarSize(int64(len(samples[i].json))) + tarSize(s.Sizes[i])
	}
	// The end-of-archive blocks count against the bound.
	plan := shards(size, n, opt.MaxShardBytes-1024, opt.MaxShardSamples)
	var names []string
	for k, r := range plan {
		name := fmt.Sprintf("webdataset/%s-%06d.tar", s.Name, k)
		if err := writeTar(ctx, sink, name, s, samples, r); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		names = append(names, name)
	}
	return names, nil
}

func writeTar(ctx context.Context, sink Sink, name string, s *Split, samples []wdsSample, r [2]int) error {
	f, err := sink.Create(name)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(f)
	member := func(name string, data []byte) error {
		hdr := &tar.Header{
			Typeflag: tar.TypeReg, Name: name, Size: int64(len(data)), Mode: 0o644,
			ModTime: tarEpoch, Format: tar.FormatUSTAR,
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	err = func() error {
		for i := r[0]; i < r[1]; i++ {
			if err := ctx.Err(); err != nil {
				return err
			}
			img, err := s.image(ctx, i)
			if err != nil {
				return err
			}
			key := s.Keys[i]
			if err := member(key+".cls", samples[i].cls); err != nil {
				return err
			}
			if err := member(key+".json", samples[i].json); err != nil {
				return err
			}
			if err := member(key+".png", img); err != nil {
				return err
			}
		}
		return tw.Close()
	}()
	if err != nil {
		f.Abort()
		return err
	}
	return f.Commit()
}
