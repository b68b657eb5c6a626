// Command bareloop is the "bare Go" benchmark peer: the least a Go program
// has to do to read a prefix of an S3 bucket and hash every object.
//
// It lists s3://BUCKET/PREFIX with the ListObjectsV2 paginator and, with N
// workers, GETs every listed object and streams its body through SHA-256 and
// MD5 at once (io.MultiWriter). It prints the object count, bytes and elapsed
// time. Listing and fetching overlap; elapsed covers both.
//
//	bareloop [-workers 64] [-endpoint URL] [-manifest FILE] s3://BUCKET/PREFIX
//
// The endpoint defaults to $KNEEPIPE_S3_ENDPOINT, then $AWS_ENDPOINT_URL_S3
// (the env file written by scripts/s3server.sh sets both); credentials and
// region come from the usual AWS environment. Requests are path-style.
package main

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

type object struct {
	key  string
	size int64
	etag string
}

type result struct {
	key    string
	size   int64
	sha256 [sha256.Size]byte
	md5    [md5.Size]byte
	etag   string
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bareloop:", err)
		os.Exit(1)
	}
}

func run() error {
	workers := flag.Int("workers", 64, "concurrent GET workers")
	endpoint := flag.String("endpoint", firstEnv("KNEEPIPE_S3_ENDPOINT", "AWS_ENDPOINT_URL_S3"),
		"S3 endpoint URL (default $KNEEPIPE_S3_ENDPOINT, then $AWS_ENDPOINT_URL_S3)")
	region := flag.String("region", firstEnv("AWS_REGION", "AWS_DEFAULT_REGION"), "region (default $AWS_REGION or us-east-1)")
	bufSize := flag.Int("buf", 64<<10, "per-worker copy buffer size in bytes")
	listOnly := flag.Bool("list-only", false, "only list (no GETs); reports listed objects and their total size")
	manifest := flag.String("manifest", "", "if set, write `key<TAB>size<TAB>sha256<TAB>md5` lines (sorted by key) to this file")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: %s [flags] s3://BUCKET/PREFIX\n", os.Args[0])
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	if *workers < 1 {
		return errors.New("-workers must be >= 1")
	}
	bucket, prefix, err := parseS3URL(flag.Arg(0))
	if err != nil {
		return err
	}
	if *region == "" {
		*region = "us-east-1"
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	// AWS_CA_BUNDLE may be set: the SDK then insists on a *BuildableClient,
	// so tune the transport through it rather than a plain *http.Client.
	httpClient := awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.MaxIdleConns = *workers * 2
		t.MaxIdleConnsPerHost = *workers * 2
		t.MaxConnsPerHost = 0
	})
	cfg, err := config.LoadDefaultConfig(ctx,
		config.WithRegion(*region),
		config.WithHTTPClient(httpClient),
	)
	if err != nil {
		return fmt.Errorf("load AWS config: %w", err)
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.UsePathStyle = true
		if *endpoint != "" {
			o.BaseEndpoint = aws.String(*endpoint)
		}
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		o.DisableLogOutputChecksumValidationSkipped = true
	})

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	start := time.Now()
	objs := make(chan object, *workers*4)
	var (
		listed     atomic.Int64
		outOfOrder atomic.Int64
		listDone   time.Duration
	)
	go func() {
		defer close(objs)
		p := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{
			Bucket: aws.String(bucket),
			Prefix: aws.String(prefix),
		})
		prev := ""
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				cancel(fmt.Errorf("list s3://%s/%s: %w", bucket, prefix, err))
				return
			}
			for _, o := range page.Contents {
				k := aws.ToString(o.Key)
				if listed.Load() > 0 && k <= prev {
					outOfOrder.Add(1)
				}
				prev = k
				listed.Add(1)
				select {
				case objs <- object{key: k, size: aws.ToInt64(o.Size), etag: aws.ToString(o.ETag)}:
				case <-ctx.Done():
					return
				}
			}
		}
		listDone = time.Since(start)
	}()

	var (
		wg       sync.WaitGroup
		nObjs    atomic.Int64
		nBytes   atomic.Int64
		etagMD5  atomic.Int64 // ETag equals the MD5 we computed
		etagNone atomic.Int64 // empty ETag (files placed on disk, not PUT)
		mu       sync.Mutex
		results  []result
		wantList = *manifest != ""
	)
	if *listOnly {
		for o := range objs {
			nObjs.Add(1)
			nBytes.Add(o.size)
		}
		*workers = 0
	}
	for range *workers {
		wg.Go(func() {
			buf := make([]byte, *bufSize)
			sh, m5 := sha256.New(), md5.New()
			for o := range objs {
				r, err := fetch(ctx, client, bucket, o, buf, sh, m5)
				if err != nil {
					cancel(err)
					// Drain so the lister is never blocked.
					for range objs {
					}
					return
				}
				nObjs.Add(1)
				nBytes.Add(r.size)
				switch strings.Trim(r.etag, `"`) {
				case "":
					etagNone.Add(1)
				case hex.EncodeToString(r.md5[:]):
					etagMD5.Add(1)
				}
				if wantList {
					mu.Lock()
					results = append(results, r)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := context.Cause(ctx); err != nil {
		return err
	}

	n, b := nObjs.Load(), nBytes.Load()
	secs := elapsed.Seconds()
	fmt.Printf("objects=%d bytes=%d elapsed=%s list=%s workers=%d obj/s=%.0f MiB/s=%.1f\n",
		n, b, elapsed.Round(time.Millisecond), listDone.Round(time.Millisecond), *workers,
		float64(n)/secs, float64(b)/secs/(1<<20))
	fmt.Printf("etags: md5=%d empty=%d other=%d\n", etagMD5.Load(), etagNone.Load(), n-etagMD5.Load()-etagNone.Load())
	if oo := outOfOrder.Load(); oo > 0 {
		fmt.Printf("warning: %d listed keys were not in strictly increasing byte order\n", oo)
	}
	if wantList {
		if err := writeManifest(*manifest, results); err != nil {
			return err
		}
	}
	return nil
}

func fetch(ctx context.Context, client *s3.Client, bucket string, o object, buf []byte, sh, m5 hash.Hash) (result, error) {
	out, err := client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(bucket),
		Key:    aws.String(o.key),
	})
	if err != nil {
		return result{}, fmt.Errorf("get s3://%s/%s: %w", bucket, o.key, err)
	}
	defer out.Body.Close()
	sh.Reset()
	m5.Reset()
	n, err := io.CopyBuffer(io.MultiWriter(sh, m5), out.Body, buf)
	if err != nil {
		return result{}, fmt.Errorf("read s3://%s/%s: %w", bucket, o.key, err)
	}
	if n != o.size {
		return result{}, fmt.Errorf("s3://%s/%s: read %d bytes, listing said %d", bucket, o.key, n, o.size)
	}
	r := result{key: o.key, size: n, etag: o.etag}
	sh.Sum(r.sha256[:0])
	m5.Sum(r.md5[:0])
	return r, nil
}

func writeManifest(path string, rs []result) error {
	slices.SortFunc(rs, func(a, b result) int { return strings.Compare(a.key, b.key) })
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	var sb strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&sb, "%s\t%d\t%s\t%s\n", r.key, r.size, hex.EncodeToString(r.sha256[:]), hex.EncodeToString(r.md5[:]))
	}
	if _, err := io.WriteString(f, sb.String()); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func parseS3URL(u string) (bucket, prefix string, err error) {
	rest, ok := strings.CutPrefix(u, "s3://")
	if !ok {
		return "", "", fmt.Errorf("want s3://BUCKET/PREFIX, got %q", u)
	}
	bucket, prefix, _ = strings.Cut(rest, "/")
	if bucket == "" {
		return "", "", fmt.Errorf("no bucket in %q", u)
	}
	return bucket, prefix, nil
}

func firstEnv(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}
