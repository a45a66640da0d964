"""Network services the agent answers itself on its own ports' networks
(router advertisements now; DHCP and DNS later): sans-IO protocol cores,
pure functions of bytes and the plan, with thin socket adapters in
``overcast.linux``."""
