#!/usr/bin/env python3
"""Writes examples/harbor_report.txt: a made-up harbor log of a few thousand tokens with one fact
(the gate password) in the middle, for the README's first command and for needle tests.
The text is generated from our own sentence templates with a fixed seed, so it is reproducible.
Run: python3 tools/make_example_document.py
"""
import random

random.seed(2411)
SHIPS = ["Marigold", "North Star", "Kestrel", "Windrose", "Saltmarsh", "Juniper", "Osprey",
         "Halcyon", "Bramble", "Lantern", "Seafoam", "Tamarisk", "Corvid", "Driftwood"]
CARGO = ["grain", "wool", "timber", "salted fish", "copper pots", "lamp oil", "rope", "barley",
         "linen", "apples", "slate", "candles", "iron nails", "dried peas"]
PORTS = ["Eastmere", "Collin Bay", "Harrowgate", "Westfold", "Pike Island", "Ardmore", "Lowick"]
WEATHER = ["a cold fog lay over the water", "the wind came hard from the north",
           "the sky was clear and the sea was calm", "rain fell steadily through the afternoon",
           "a light swell rolled in from the west", "gulls crowded the breakwater all morning"]
DUTIES = ["repaired the lamp on the eastern pier", "counted the barrels in the bonded store",
          "cleared weed from the slipway", "painted the tide marks on the harbor wall",
          "checked the mooring chains", "swept the customs office",
          "mended two nets for the fishing crews", "tested the fog bell"]
NAMES = ["Ada Pell", "Tomas Reed", "Ines Vold", "Marten Quill", "Rosa Fenn", "Owen Marsh"]

lines = ["Harbor Office Log, Spring Season", ""]
for day in range(1, 41):
    s = [f"Day {day}. In the morning {random.choice(WEATHER)}."]
    for _ in range(random.randint(2, 3)):
        s.append(f"The {random.choice(SHIPS)} arrived from {random.choice(PORTS)} with "
                 f"{random.randint(3, 90)} crates of {random.choice(CARGO)} and left again before dusk.")
    s.append(f"{random.choice(NAMES)} {random.choice(DUTIES)}.")
    if day == 21:
        s.append("The harbor master set a new password for the north gate: the password is "
                 "COPPER-LANTERN-58. Every keeper must use it from tomorrow on.")
    s.append(f"By evening the tide stood at {random.randint(2, 9)} feet and the office closed "
             f"at {random.choice(['six', 'seven', 'eight'])} o'clock.")
    lines.append(" ".join(s))
    lines.append("")
open("examples/harbor_report.txt", "w").write("\n".join(lines))
