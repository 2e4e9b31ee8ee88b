// apiload creates, updates or deletes Services (or creates Pods) through the Kubernetes API server at a given
// concurrency and reports latency percentiles and throughput as JSON; `-op populate` fills a
// cluster with many namespaces of Services for the scale benchmark (benchmarks/scan_services.py). Standard library only,
// over HTTP/2 as client-go talks to the API server, in its own process so the client's cost
// is not charged to the API server or the webhook.
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
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

type result struct {
	Requests   int            `json:"requests"`
	Seconds    float64        `json:"seconds"`
	PerSecond  float64        `json:"per_second"`
	P50Millis  float64        `json:"p50_ms"`
	P95Millis  float64        `json:"p95_ms"`
	P99Millis  float64        `json:"p99_ms"`
	MaxMillis  float64        `json:"max_ms"`
	Statuses   map[string]int `json:"statuses"`
	FirstError string         `json:"first_error,omitempty"`
	// The first answer that was neither a success nor a denial (a 5xx, 429...): what the API
	// server said went wrong, e.g. the webhook call that failed.
	FirstFailure string `json:"first_failure,omitempty"`
}

type call struct {
	method, path, contentType string
	body                      []byte
}

func main() {
	server := flag.String("server", "", "API server URL")
	caFile := flag.String("ca", "", "PEM CA of the API server")
	certFile := flag.String("cert", "", "client certificate")
	keyFile := flag.String("key", "", "client key")
	namespace := flag.String("namespace", "default", "namespace of the Services")
	op := flag.String("op", "create", "create, update (worker w patches Service PREFIX-w), prepare (creates PREFIX-0..c-1 as ClusterIP), cleanup (deletes every Service in the namespace) or populate (-services in -namespaces, and -crowded in one)")
	serviceType := flag.String("type", "ClusterIP", "spec.type sent")
	prefix := flag.String("prefix", "bench", "Service name prefix")
	concurrency := flag.Int("c", 1, "requests in flight")
	total := flag.Int("n", 300, "measured requests (after one unmeasured request per worker)")
	resource := flag.String("resource", "services", "services, or pods (create and cleanup only)")
	hostPort := flag.Int("hostport", 0, "for pods: the container port's hostPort (0: none)")
	services := flag.Int("services", 0, "populate: Services spread over -namespaces namespaces")
	namespaces := flag.Int("namespaces", 1, "populate: namespaces PREFIX-000... (every fourth labelled audit)")
	crowded := flag.Int("crowded", 0, "populate: Services in one more namespace, PREFIX-crowded")
	nodePorts := flag.Int("nodeports", 2000, "populate: at most this many NodePort Services (the cluster's node-port range)")
	flag.Parse()
	if *op == "populate" {
		check(populate(newClient(*caFile, *certFile, *keyFile), *server, *prefix, *services, *namespaces, *crowded, *nodePorts, *concurrency))
		return
	}

	client := newClient(*caFile, *certFile, *keyFile)
	base := *server + "/api/v1/namespaces/" + *namespace + "/" + *resource
	if *op == "cleanup" {
		check(cleanup(client, base, *concurrency))
		return
	}
	if *op == "prepare" {
		var calls []call
		for w := 0; w < *concurrency; w++ {
			calls = append(calls, call{"POST", base, "application/json", serviceJSON(fmt.Sprintf("%s-%d", *prefix, w), "ClusterIP")})
		}
		check(runAll(client, calls, *concurrency))
		return
	}
	var sequence int64 = -1
	request := func(worker int) call {
		i := atomic.AddInt64(&sequence, 1)
		if *op == "update" {
			patch := fmt.Sprintf(`{"metadata":{"labels":{"bench-round":"%d"}},"spec":{"type":%q}}`, i, *serviceType)
			return call{"PATCH", base + "/" + fmt.Sprintf("%s-%d", *prefix, worker), "application/merge-patch+json", []byte(patch)}
		}
		name := fmt.Sprintf("%s-%d", *prefix, i)
		if *resource == "pods" {
			return call{"POST", base, "application/json", podJSON(name, *hostPort)}
		}
		return call{"POST", base, "application/json", serviceJSON(name, *serviceType)}
	}

	var mu sync.Mutex
	statuses := map[string]int{}
	var latencies []time.Duration
	firstError, firstFailure := "", ""
	var warm, done sync.WaitGroup
	start := make(chan struct{})
	var remaining int64 = int64(*total)
	warm.Add(*concurrency)
	done.Add(*concurrency)
	for w := 0; w < *concurrency; w++ {
		go func(worker int) {
			defer done.Done()
			do(client, request(worker)) // opens the stream and warms the path; not counted
			warm.Done()
			<-start
			local := make([]time.Duration, 0, *total / *concurrency + 1)
			localStatuses := map[string]int{}
			localError, localFailure := "", ""
			for atomic.AddInt64(&remaining, -1) >= 0 {
				sent := time.Now()
				status, body, err := doRead(client, request(worker))
				local = append(local, time.Since(sent))
				if err != nil {
					status = "error"
					if localError == "" {
						localError = err.Error()
					}
				} else if localFailure == "" && status[0] != '2' && status != "403" {
					localFailure = status + " " + string(body)
				}
				localStatuses[status]++
			}
			mu.Lock()
			latencies = append(latencies, local...)
			for k, v := range localStatuses {
				statuses[k] += v
			}
			if firstError == "" {
				firstError = localError
			}
			if firstFailure == "" {
				firstFailure = localFailure
			}
			mu.Unlock()
		}(w)
	}
	warm.Wait()
	began := time.Now()
	close(start)
	done.Wait()
	seconds := time.Since(began).Seconds()
	sort.Slice(latencies, func(a, b int) bool { return latencies[a] < latencies[b] })
	check(json.NewEncoder(os.Stdout).Encode(result{
		Requests:     len(latencies),
		Seconds:      seconds,
		PerSecond:    float64(len(latencies)) / seconds,
		P50Millis:    percentile(latencies, 0.50),
		P95Millis:    percentile(latencies, 0.95),
		P99Millis:    percentile(latencies, 0.99),
		MaxMillis:    percentile(latencies, 1.0),
		Statuses:     statuses,
		FirstError:   firstError,
		FirstFailure: firstFailure,
	}))
}

func serviceJSON(name, serviceType string) []byte {
	body, _ := json.Marshal(map[string]any{
		"apiVersion": "v1",
		"kind":       "Service",
		"metadata":   map[string]any{"name": name, "labels": map[string]string{"app": "bench"}},
		"spec": map[string]any{
			"type":     serviceType,
			"selector": map[string]string{"app": "bench"},
			"ports":    []map[string]any{{"name": "http", "port": 80, "targetPort": 8080}},
		},
	})
	return body
}

// podJSON: one nginx container with one port, and a host port when hostPort > 0. The local
// control plane runs no scheduler: the Pod is stored and stays Pending.
func podJSON(name string, hostPort int) []byte {
	port := map[string]any{"containerPort": 80}
	if hostPort > 0 {
		port["hostPort"] = hostPort
	}
	body, _ := json.Marshal(map[string]any{
		"apiVersion": "v1",
		"kind":       "Pod",
		"metadata":   map[string]any{"name": name, "labels": map[string]string{"app": "bench"}},
		"spec": map[string]any{
			"containers": []map[string]any{{"name": "nginx", "image": "nginx:1.27", "ports": []map[string]any{port}}},
		},
	})
	return body
}

func newClient(caFile, certFile, keyFile string) *http.Client {
	caPEM, err := os.ReadFile(caFile)
	check(err)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		check(fmt.Errorf("no certificate in %s", caFile))
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	check(err)
	transport := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 64,
	}
	return &http.Client{Transport: transport, Timeout: 30 * time.Second}
}

func do(client *http.Client, c call) (string, error) {
	status, _, err := doRead(client, c)
	return status, err
}

// doRead: the status, and the first KiB of the body unless the answer is a success.
func doRead(client *http.Client, c call) (string, []byte, error) {
	request, err := http.NewRequest(c.method, c.path, bytes.NewReader(c.body))
	if err != nil {
		return "", nil, err
	}
	if c.body != nil {
		request.Header.Set("Content-Type", c.contentType)
	}
	request.Header.Set("Accept", "application/json")
	response, err := client.Do(request)
	if err != nil {
		return "", nil, err
	}
	defer response.Body.Close()
	var kept []byte
	if response.StatusCode >= 300 {
		if kept, err = io.ReadAll(io.LimitReader(response.Body, 1024)); err != nil {
			return "", nil, err
		}
	}
	if _, err := io.Copy(io.Discard, response.Body); err != nil {
		return "", nil, err
	}
	return strconv.Itoa(response.StatusCode), kept, nil
}

func runAll(client *http.Client, calls []call, concurrency int) error {
	var wg sync.WaitGroup
	errs := make(chan error, len(calls))
	slots := make(chan struct{}, concurrency)
	for _, c := range calls {
		wg.Add(1)
		slots <- struct{}{}
		go func(c call) {
			defer wg.Done()
			defer func() { <-slots }()
			status, err := do(client, c)
			if err == nil && status[0] != '2' && status != "404" && status != "409" {
				err = fmt.Errorf("%s %s: HTTP %s", c.method, c.path, status)
			}
			errs <- err
		}(c)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func cleanup(client *http.Client, base string, concurrency int) error {
	response, err := client.Get(base)
	if err != nil {
		return err
	}
	defer response.Body.Close()
	var list struct {
		Items []struct {
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		} `json:"items"`
	}
	if err := json.NewDecoder(response.Body).Decode(&list); err != nil {
		return err
	}
	var calls []call
	for _, item := range list.Items {
		// Pods go at once: none ever ran (no node), so nothing waits for a kubelet.
		calls = append(calls, call{"DELETE", base + "/" + item.Metadata.Name + "?gracePeriodSeconds=0", "", nil})
	}
	return runAll(client, calls, concurrency)
}

func percentile(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return float64(sorted[int(q*float64(len(sorted)-1))].Microseconds()) / 1000
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "apiload:", err)
		os.Exit(2)
	}
}

// populate creates the namespaces, then the Services at the given concurrency: a quarter of
// them exposed (NodePort up to nodePorts of them, then LoadBalancer without node ports and
// ClusterIP with an external IP, in turn), the rest headless (no cluster IP to allocate: a
// cluster of 100,000 would exhaust the local plane's /16 Service range). Existing objects
// (409) are fine, so a second run completes the first. Prints one JSON line.
func populate(client *http.Client, server, prefix string, services, namespaces, crowded, nodePorts, concurrency int) error {
	type target struct {
		namespace string
		count     int
	}
	var targets []target
	for n := 0; n < namespaces; n++ {
		count := services / namespaces
		if n < services%namespaces {
			count++
		}
		targets = append(targets, target{fmt.Sprintf("%s-%03d", prefix, n), count})
	}
	if crowded > 0 {
		targets = append(targets, target{prefix + "-crowded", crowded})
	}
	began := time.Now()
	var calls []call
	for n, t := range targets {
		labels := map[string]string{}
		if n%4 == 0 {
			labels["clusterip-guard.io/mode"] = "audit"
		}
		body, _ := json.Marshal(map[string]any{
			"apiVersion": "v1", "kind": "Namespace",
			"metadata": map[string]any{"name": t.namespace, "labels": labels},
		})
		calls = append(calls, call{"POST", server + "/api/v1/namespaces", "application/json", body})
	}
	if err := runAll(client, calls, concurrency); err != nil {
		return err
	}
	calls = calls[:0]
	exposed := 0
	for _, t := range targets {
		for i := 0; i < t.count; i++ {
			name := fmt.Sprintf("svc-%05d", i)
			spec := map[string]any{
				"selector": map[string]string{"app": name},
				"ports":    []map[string]any{{"name": "http", "port": 80, "targetPort": 8080}},
			}
			switch {
			case i%4 != 0:
				spec["clusterIP"] = "None"
			case exposed < nodePorts:
				spec["type"] = "NodePort"
				exposed++
			case exposed%2 == 0:
				spec["type"] = "LoadBalancer"
				spec["allocateLoadBalancerNodePorts"] = false
				exposed++
			default:
				spec["externalIPs"] = []string{fmt.Sprintf("203.0.113.%d", 1+exposed%250)}
				exposed++
			}
			body, _ := json.Marshal(map[string]any{
				"apiVersion": "v1", "kind": "Service",
				"metadata": map[string]any{"name": name}, "spec": spec,
			})
			calls = append(calls, call{"POST", server + "/api/v1/namespaces/" + t.namespace + "/services", "application/json", body})
		}
	}
	if err := runAll(client, calls, concurrency); err != nil {
		return err
	}
	seconds := time.Since(began).Seconds()
	return json.NewEncoder(os.Stdout).Encode(map[string]any{
		"namespaces": len(targets), "services": len(calls), "exposed": exposed,
		"seconds": seconds, "per_second": float64(len(calls)) / seconds,
	})
}
