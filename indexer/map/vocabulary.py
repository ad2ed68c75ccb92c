"""A fixed vocabulary of everyday nouns that names regions of the images map.

Each word is embedded once per CLIP model through its text tower ("a photo of a …") and
kept under the map folder; a region's name is the words nearest its centre. Chosen to
cover what a person's pictures hold: people and moments, animals, food, places, nature,
things at home and at work, documents and screens, vehicles, sport, art.
"""

from __future__ import annotations

NOUNS: tuple[str, ...] = tuple("""
person people man woman child baby boy girl family friends crowd couple portrait selfie face smile
wedding birthday party graduation concert festival ceremony meeting conference class team group
dog puppy cat kitten bird parrot horse cow sheep goat pig chicken duck fish aquarium rabbit hamster
insect butterfly bee spider snake lizard turtle frog deer fox bear lion tiger elephant giraffe zebra
monkey whale dolphin seal penguin owl eagle
food meal breakfast lunch dinner pizza burger sandwich salad soup pasta noodles rice sushi bread cake
cookie dessert ice-cream chocolate fruit apple banana orange strawberry grapes vegetables tomato coffee
tea wine beer cocktail drink bottle cup plate kitchen restaurant cafe market
beach sea ocean wave lake river waterfall mountain hill valley forest tree flower garden park field
meadow desert snow ice glacier sky cloud sunset sunrise night stars moon rain storm fog rainbow
island cliff cave rock sand grass leaves autumn winter spring summer
city street road bridge building skyscraper house apartment church temple castle tower monument museum
station airport harbour boat ship sailboat car bus train tram bicycle motorcycle truck airplane
helicopter traffic parking village farm barn fence
room living-room bedroom bathroom office desk chair sofa table bed window door stairs lamp shelf
bookshelf book newspaper magazine letter notebook pen pencil paper envelope box bag suitcase backpack
clothes dress shirt shoes hat glasses jewellery watch ring toy doll teddy-bear game puzzle
computer laptop keyboard screen monitor phone tablet camera television printer cable circuit robot
screenshot chart graph diagram map table-of-numbers spreadsheet presentation slide code terminal website
document receipt invoice ticket passport certificate form contract menu sign poster label logo
handwriting whiteboard blackboard drawing sketch painting artwork sculpture photo-album comic cartoon
text page scan
ball football soccer basketball tennis golf swimming pool running cycling skiing snowboard surfing
climbing hiking camping tent gym yoga dance stage guitar piano violin drums microphone
christmas halloween easter fireworks candle balloon gift flowers bouquet
tool hammer workshop construction crane machine engine garage repair
hospital doctor medicine x-ray laboratory microscope school classroom library
""".split())
