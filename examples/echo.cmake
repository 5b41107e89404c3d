# echo.cmake - runs echo_server and echo_client together on 127.0.0.1.
#
# echo_1000: the server (ephemeral port, --max-conns 1000) and the client
# (1,000 connections x 100 round trips of 32 bytes) in separate processes;
# passes when the client says every round trip succeeded and the server
# exits cleanly after the 1,000 connections closed.  Both raise
# RLIMIT_NOFILE to its hard limit themselves.
#
# The driver is a small sh script written into the build tree.

set(_echo_driver ${CMAKE_CURRENT_BINARY_DIR}/echo_test.sh)
file(WRITE ${_echo_driver} [=[
#!/bin/sh
# echo_test.sh SERVER CLIENT CONNS ROUNDS
server=$1
client=$2
conns=$3
rounds=$4
dir=$(mktemp -d "${TMPDIR:-/tmp}/gort_echo.XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT
"$server" 0 --max-conns "$conns" >"$dir/server.log" 2>&1 &
spid=$!
port=
i=0
while [ $i -lt 100 ]
do
    port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$dir/server.log")
    [ -n "$port" ] && break
    kill -0 $spid 2>/dev/null || break
    sleep 0.1
    i=$((i + 1))
done
if [ -z "$port" ]
then
    echo "echo_server did not print its port:"
    cat "$dir/server.log"
    kill $spid 2>/dev/null
    exit 1
fi
echo "server listening on port $port"
"$client" "$port" "$conns" "$rounds" >"$dir/client.log" 2>&1
crc=$?
if [ $crc -ne 0 ]
then
    kill $spid 2>/dev/null
fi
wait $spid
src=$?
echo "--- echo_client (exit $crc)"
cat "$dir/client.log"
echo "--- echo_server (exit $src)"
cat "$dir/server.log"
total=$((conns * rounds))
grep -q "^all $total round trips succeeded$" "$dir/client.log" || exit 1
grep -q "^served $conns connections" "$dir/server.log" || exit 1
[ $crc -eq 0 ] && [ $src -eq 0 ]
]=])

add_test(NAME echo_1000
  COMMAND sh ${_echo_driver} $<TARGET_FILE:echo_server> $<TARGET_FILE:echo_client> 1000 100)
set_tests_properties(echo_1000 PROPERTIES LABELS example TIMEOUT 60)
