#!/usr/bin/perl
# CPU time exported for a pod against the time it really ran.
#   cputime.pl STATLOG T0 T1 PROFILE.txt...
# STATLOG: lines "unix_ns utime stime" (/proc/PID/stat fields 14 and 15, in
# clock ticks of 10 ms) polled while the agent ran. Each PROFILE.txt is a pprof
# profile as `protoc --decode=perftools.profiles.Profile` prints it. Profiles
# whose [time, time + duration] lies inside [T0, T1] are summed (sample value 2:
# CPU nanoseconds) and the process's own CPU time over the same windows is
# interpolated from STATLOG. Prints "exported_ms truth_ms windows".
use strict;
use warnings;

my ($statlog, $t0, $t1, @profiles) = @ARGV;
my @stat;
open(my $sf, '<', $statlog) or die "$statlog: $!";
while (<$sf>) {
	my ($ns, $u, $s) = split;
	push @stat, [$ns, ($u + $s) * 10_000_000] if defined $s;
}
close($sf);
die "too few /proc samples\n" if @stat < 2;

# CPU nanoseconds the process had used at time $t (linear between polls)
sub used_at {
	my ($t) = @_;
	for my $i (1 .. $#stat) {
		my ($a, $b) = ($stat[$i - 1], $stat[$i]);
		next if $t > $b->[0];
		return $a->[1] if $t <= $a->[0];
		return $a->[1] + ($b->[1] - $a->[1]) * ($t - $a->[0]) / ($b->[0] - $a->[0]);
	}
	return $stat[-1][1];
}

my ($exported, $truth, $windows) = (0, 0, 0);
for my $p (@profiles) {
	open(my $pf, '<', $p) or die "$p: $!";
	my ($time, $dur, $cpu, $in_sample, @vals) = (0, 0, 0, 0);
	while (<$pf>) {
		$time = $1 if /^time_nanos: (\d+)/;
		$dur = $1 if /^duration_nanos: (\d+)/;
		$in_sample = 1, @vals = () if /^sample \{/;
		push @vals, $1 if $in_sample && /^\s+value: (-?\d+)/;
		if ($in_sample && /^\}/) {
			$cpu += $vals[1] // 0;
			$in_sample = 0;
		}
	}
	close($pf);
	next unless $time >= $t0 && $time + $dur <= $t1;
	$exported += $cpu;
	$truth += used_at($time + $dur) - used_at($time);
	$windows++;
}
printf "%d %d %d\n", $exported / 1e6, $truth / 1e6, $windows;
