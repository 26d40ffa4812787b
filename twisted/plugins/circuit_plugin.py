# Lazy: twistd imports this while parsing options; nothing heavy happens until makeService.
from twisted.application.service import ServiceMaker

circuit = ServiceMaker(
    "circuit", "circuit.tap",
    "A circuit host: processes, channels and selects as a file tree", "circuit")
