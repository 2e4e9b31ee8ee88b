module github.com/clusterip-guard/clusterip-guard/benchmarks/loadgen

go 1.26.0
