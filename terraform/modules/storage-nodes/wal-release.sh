# A node that drained cleanly (exit status 0: partitions handed over, WAL tail uploaded) no
# longer needs its WAL volume: detach and delete it. Otherwise keep it for the controller, which
# attaches it to a surviving node in this zone and replays it.
VOL=$(cat /etc/fjord/wal-volume-id 2>/dev/null || true)
if [ "$EXIT_STATUS" = "0" ] && [ -n "$VOL" ]; then
  if umount /var/lib/fjord \
    && aws ec2 detach-volume --region "$REGION" --volume-id "$VOL" >/dev/null \
    && aws ec2 wait volume-available --region "$REGION" --volume-ids "$VOL" \
    && aws ec2 delete-volume --region "$REGION" --volume-id "$VOL"; then
    echo "drained WAL volume $VOL deleted"
  else
    echo "WAL volume $VOL kept"
  fi
else
  echo "fjord did not drain cleanly (status $EXIT_STATUS): WAL volume $VOL kept for recovery"
fi
