"""The three-box tour: a recorder, a KVM host and a booted guest VM on one machine."""
