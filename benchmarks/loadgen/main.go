// loadgen sends AdmissionReviews to a webhook over TLS with keep-alive and reports
// throughput and latency percentiles as JSON. It is a separate process so that the load
// generator's own cost is not counted against the server.
package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
)

type result struct {
	Requests    int     `json:"requests"`
	Errors      int     `json:"errors"`
	Seconds     float64 `json:"seconds"`
	PerSecond   float64 `json:"reviews_per_second"`
	P50Millis   float64 `json:"p50_ms"`
	P90Millis   float64 `json:"p90_ms"`
	P95Millis   float64 `json:"p95_ms"`
	P99Millis   float64 `json:"p99_ms"`
	MaxMillis   float64 `json:"max_ms"`
	Connections int     `json:"connections"`
	FirstError  string  `json:"first_error,omitempty"`
}

func main() {
	url := flag.String("url", "", "webhook URL, e.g. https://127.0.0.1:8443/mutate; several, comma-separated, share the connections out (one worker process each)")
	caFile := flag.String("ca", "", "PEM CA that signed the webhook's certificate")
	bodyFile := flag.String("body", "", "AdmissionReview JSON to send")
	connections := flag.Int("c", 4, "concurrent keep-alive connections")
	duration := flag.Duration("d", 10*time.Second, "how long to send")
	warmup := flag.Duration("warmup", 2*time.Second, "sending time not counted")
	flag.Parse()
	if *url == "" || *caFile == "" || *bodyFile == "" {
		fmt.Fprintln(os.Stderr, "loadgen: -url, -ca and -body are required")
		os.Exit(2)
	}
	caPEM, err := os.ReadFile(*caFile)
	check(err)
	body, err := os.ReadFile(*bodyFile)
	check(err)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		fmt.Fprintln(os.Stderr, "loadgen: no certificate in", *caFile)
		os.Exit(2)
	}
	transport := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		MaxIdleConnsPerHost: *connections,
		MaxConnsPerHost:     *connections,
	}
	client := &http.Client{Transport: transport, Timeout: 10 * time.Second}

	var mu sync.Mutex
	var latencies []time.Duration
	errors := 0
	firstError := ""
	start := time.Now()
	measureFrom := start.Add(*warmup)
	end := measureFrom.Add(*duration)
	var wg sync.WaitGroup
	urls := strings.Split(*url, ",")
	for i := 0; i < *connections; i++ {
		wg.Add(1)
		target := urls[i%len(urls)]
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, 1<<16)
			localErrors := 0
			localFirst := ""
			for {
				sent := time.Now()
				if sent.After(end) {
					break
				}
				err := post(client, target, body)
				took := time.Since(sent)
				if sent.Before(measureFrom) {
					continue
				}
				if err != nil {
					localErrors++
					if localFirst == "" {
						localFirst = err.Error()
					}
					continue
				}
				local = append(local, took)
			}
			mu.Lock()
			latencies = append(latencies, local...)
			errors += localErrors
			if firstError == "" {
				firstError = localFirst
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	sort.Slice(latencies, func(a, b int) bool { return latencies[a] < latencies[b] })
	out := result{
		Requests:    len(latencies),
		Errors:      errors,
		Seconds:     duration.Seconds(),
		PerSecond:   float64(len(latencies)) / duration.Seconds(),
		P50Millis:   percentile(latencies, 0.50),
		P90Millis:   percentile(latencies, 0.90),
		P95Millis:   percentile(latencies, 0.95),
		P99Millis:   percentile(latencies, 0.99),
		MaxMillis:   percentile(latencies, 1.0),
		Connections: *connections,
		FirstError:  firstError,
	}
	check(json.NewEncoder(os.Stdout).Encode(out))
}

func post(client *http.Client, url string, body []byte) error {
	response, err := client.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer response.Body.Close()
	if _, err := io.Copy(io.Discard, response.Body); err != nil {
		return err
	}
	if response.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d", response.StatusCode)
	}
	return nil
}

func percentile(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	index := int(q * float64(len(sorted)-1))
	return float64(sorted[index].Microseconds()) / 1000
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(2)
	}
}
