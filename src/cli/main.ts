console.log('peergate cli placeholder', process.argv.slice(2));
