import sys, statistics as st
rows=[l.split() for l in open(sys.argv[1]) if not 'fail' in l]
for v in "01":
    s=[float(r[1])*1000 for r in rows if r[0]==v]; w=[float(r[2])*1000 for r in rows if r[0]==v]
    print("rcu_expedited=%s n=%d suspend median %.0f ms, wake first byte median %.1f ms (p25 %.1f, p75 %.1f)" % (v, len(w), st.median(s), st.median(w), *st.quantiles(w, n=4)[0:3:2]))
# pairs: consecutive (0,1) wakes
d=[]
for i in range(0, len(rows)-1, 2):
    a,b=rows[i],rows[i+1]
    if a[0]!=b[0]:
        x={a[0]:float(a[2]),b[0]:float(b[2])}; d.append((x["1"]-x["0"])*1000)
print("pairs %d: median (1 - 0) %.1f ms, 1 faster in %d" % (len(d), st.median(d), sum(1 for x in d if x<0)))
