#!/usr/bin/env bash
# Regenerates the app icon set (RGBA PNGs) from shapes: a rounded accent square carrying the
# character 工 ("labour", as in 工会) drawn as three white bars. Needs ImageMagick.
set -euo pipefail
cd "$(dirname "$0")"
convert -size 1024x1024 xc:none \
  -fill '#C8372D' -draw 'roundrectangle 64,64 960,960 200,200' \
  -fill white \
  -draw 'roundrectangle 272,272 752,352 24,24' \
  -draw 'roundrectangle 472,312 552,712 24,24' \
  -draw 'roundrectangle 232,672 792,752 24,24' \
  -depth 8 -define png:color-type=6 master.png
# every size a desktop's icon theme asks for (the .deb and .rpm install each under hicolor)
for s in 16 24 32 48 64 128 256 512; do
  convert master.png -resize ${s}x${s} -depth 8 -define png:color-type=6 "${s}x${s}.png"
done
cp 256x256.png 128x128@2x.png
mv 512x512.png icon.png
rm master.png
