"""What the local control plane (hack/controlplane/localcluster) and the real node
(hack/cluster) both need from the host: processes recorded by pid and start time, spawned,
waited for and stopped (`processes`); a throwaway PKI (`pki`); kubeconfigs (`kubeconfig`);
state files written whole or not at all (`state`); the flags etcd and kube-apiserver share
(`flags`). The standard library and cryptography only."""
