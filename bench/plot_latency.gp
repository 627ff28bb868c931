# p50 / p99 / p99.9 latency of cairn and its competitor per comparison.
# Variables (gnuplot -e): datafile, outfile, subtitle.
set terminal pngcairo size 1400,700 font "sans,10"
set output outfile
set title "Latency percentiles, median of alternating runs (".subtitle.")"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set logscale y
set ylabel "milliseconds"
set xtics rotate by -35 left
set key top left
set grid ytics
set bmargin 12
set xrange [-0.8:*]
plot datafile using 2:xtic(1) title "cairn p50" lc rgb "#9ecae1", \
     '' using 3 title "other p50" lc rgb "#d9d9d9", \
     '' using 4 title "cairn p99" lc rgb "#3182bd", \
     '' using 5 title "other p99" lc rgb "#969696", \
     '' using 6 title "cairn p99.9" lc rgb "#08519c", \
     '' using 7 title "other p99.9" lc rgb "#525252"
