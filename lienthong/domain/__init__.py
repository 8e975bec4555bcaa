"""Pure domain rules of one-stop-shop processing. Nothing here imports Kafka or Faust."""
