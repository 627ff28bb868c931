# Overload: latency of served requests and share shed against offered load
# (percent of measured capacity). Variables: datafile, outfile, subtitle.
set terminal pngcairo size 1000,600 font "sans,10"
set output outfile
set title "cairn durable, HTTP PUT, open loop (".subtitle.")"
set xlabel "offered load, % of measured capacity"
set ylabel "latency of served requests, ms"
set y2label "requests shed (503), %"
set logscale y
set y2range [0:100]
set xrange [0:160]
set boxwidth 8
set ytics nomirror
set y2tics
set grid
set key top left
plot datafile using 1:2 with linespoints lw 2 title "p50", \
     '' using 1:3 with linespoints lw 2 title "p99", \
     '' using 1:4 with linespoints lw 2 title "p99.9", \
     '' using 1:5 axes x1y2 with boxes fs transparent solid 0.3 title "shed %"
