module github.com/clusterip-guard/clusterip-guard/benchmarks/apiload

go 1.26.0
