module kubepki.invalid/kubeadm-peer

go 1.19
