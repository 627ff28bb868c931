# Throughput of cairn and its competitor per comparison (log scale), with
# the cairn/competitor ratio printed above each pair.
# Variables (gnuplot -e): datafile, outfile, subtitle.
set terminal pngcairo size 1400,700 font "sans,10"
set output outfile
set title "Throughput, median of alternating runs (".subtitle.")"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set logscale y
set ylabel "requests per second"
set yrange [100:*]
set xtics rotate by -35 left
set key top right
set grid ytics
set bmargin 12
set xrange [-0.8:*]
plot datafile using 2:xtic(1) title "cairn" lc rgb "#1f77b4", \
     '' using 3 title "competitor" lc rgb "#aaaaaa", \
     '' using 0:($2 > $3 ? $2 : $3):(sprintf("%.2fx", $4)) with labels offset 0,0.8 notitle
