"""Intel iGPU PCI device ids per generation, as the Linux kernel's i915 driver lists them.

Data, not code: taken from the kernel's ``include/drm/intel/pciids.h`` (the
``INTEL_<PLATFORM>_IDS`` lists; named beside each group below). The guest reads its GPU's
id from ``/sys/class/drm/renderD*/device/device`` and ``worker/backends/generations.py`` names the
generation from it.
"""

from __future__ import annotations

INTEL_VENDOR = 0x8086


def _ids(text: str) -> frozenset[int]:
    return frozenset(int(word, 16) for word in text.split())


PCI_IDS: dict[str, frozenset[int]] = {
    # HSW
    "haswell": _ids(
        "0402 0406 040A 040B 040E 0412 0416 041A 041B 041E 0422 0426 042A 042B 042E 0A02 0A06 "
        "0A0A 0A0B 0A0E 0A12 0A16 0A1A 0A1B 0A1E 0A22 0A26 0A2A 0A2B 0A2E 0C02 0C06 0C0A 0C0B "
        "0C0E 0C12 0C16 0C1A 0C1B 0C1E 0C22 0C26 0C2A 0C2B 0C2E 0D02 0D06 0D0A 0D0B 0D0E 0D12 "
        "0D16 0D1A 0D1B 0D1E 0D22 0D26 0D2A 0D2B 0D2E "
    ),
    # BDW
    "broadwell": _ids(
        "1602 1606 160A 160B 160D 160E 1612 1616 161A 161B 161D 161E 1622 1626 162A 162B 162D "
        "162E 1632 1636 163A 163B 163D 163E "
    ),
    # SKL
    "skylake": _ids(
        "1902 1906 190A 190B 190E 1912 1913 1915 1916 1917 191A 191B 191D 191E 1921 1923 1926 "
        "1927 192A 192B 192D 1932 193A 193B 193D "
    ),
    # BXT + GLK
    "apollo_lake": _ids("0A84 1A84 1A85 3184 3185 5A84 5A85 "),
    # KBL
    "kaby_lake": _ids(
        "5902 5906 5908 590A 590B 590E 5912 5913 5915 5916 5917 591A 591B 591C 591D 591E 5921 "
        "5923 5926 5927 593B 87C0 "
    ),
    # CFL + WHL + CML
    "coffee_lake": _ids(
        "3E90 3E91 3E92 3E93 3E94 3E96 3E98 3E99 3E9A 3E9B 3E9C 3EA0 3EA1 3EA2 3EA3 3EA4 3EA5 "
        "3EA6 3EA7 3EA8 3EA9 87CA 9B21 9B41 9BA2 9BA4 9BA5 9BA8 9BAA 9BAC 9BC2 9BC4 9BC5 9BC6 "
        "9BC8 9BCA 9BCC 9BE6 9BF6 "
    ),
    # ICL
    "ice_lake": _ids("8A50 8A51 8A52 8A53 8A54 8A56 8A57 8A58 8A59 8A5A 8A5B 8A5C 8A5D 8A70 8A71 "),
    # JSL + EHL
    "jasper_lake": _ids("4541 4551 4555 4557 4570 4571 4E51 4E55 4E57 4E61 4E71 "),
    # TGL + RKL + DG1
    "tiger_lake": _ids(
        "4905 4906 4907 4908 4909 4C80 4C8A 4C8B 4C8C 4C90 4C9A 9A40 9A49 9A59 9A60 9A68 9A70 "
        "9A78 9AC0 9AC9 9AD9 9AF8 "
    ),
    # ADLS + ADLP + ADLN + RPLS + RPLU + RPLP
    "alder_lake": _ids(
        "4626 4628 462A 4680 4682 4688 468A 468B 4690 4692 4693 46A0 46A1 46A2 46A3 46A6 46A8 "
        "46AA 46B0 46B1 46B2 46B3 46C0 46C1 46C2 46C3 46D0 46D1 46D2 46D3 46D4 A720 A721 A780 "
        "A781 A782 A783 A788 A789 A78A A78B A7A0 A7A1 A7A8 A7A9 A7AA A7AB A7AC A7AD "
    ),
    # MTL + ARL
    "meteor_lake": _ids("7D40 7D41 7D45 7D51 7D55 7D60 7D67 7DD1 7DD5 B640 "),
    # DG2
    "arc": _ids(
        "5690 5691 5692 5693 5694 5695 5696 5697 56A0 56A1 56A2 56A3 56A4 56A5 56A6 56B0 56B1 "
        "56B2 56B3 56BA 56BB 56BC 56BD 56BE 56BF "
    ),
}
